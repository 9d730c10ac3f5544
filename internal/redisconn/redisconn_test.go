package redisconn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/huntaze/message-pipeline/internal/redisconn"
	"github.com/huntaze/message-pipeline/test/harness"
)

// secret is a Secrets Manager secret's current value (the read is the
// logic under test, no emulator needed).
type secret struct {
	value string
	err   error
	reads int
}

func (s *secret) GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	s.reads++
	if s.err != nil {
		return nil, s.err
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(s.value)}, nil
}

func TestConnect_ANewConnectionAuthsWithTheSecretsCurrentTokenAndConnectionsAreRecycled(t *testing.T) {
	ctx := context.Background()
	// GIVEN a real redis-server requiring the secret's token
	srv := harness.StartRedis(t)
	if err := srv.Client().Do(ctx, "ACL", "SETUSER", "default", "on", "resetpass", ">token-1").Err(); err != nil {
		t.Fatal(err)
	}
	sec := &secret{value: "token-1"}
	// WHEN a client connects through the secret
	c, err := redisconn.Connect(ctx, redisconn.Settings{Addr: srv.Addr, AuthSecretARN: "arn:secret", Timeout: time.Second}, sec)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// THEN it AUTHs with it, reads the token per connection through the
	// provider, and no connection outlives ConnMaxLifetime
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if o := c.Options(); o.CredentialsProviderContext == nil || o.ConnMaxLifetime != redisconn.ConnMaxLifetime || o.Password != "" {
		t.Fatalf("options: provider %v, max lifetime %s", o.CredentialsProviderContext != nil, o.ConnMaxLifetime)
	}
}

func TestSecretToken_RereadsAfterRefreshAndKeepsTheLastTokenWhenTheReadFails(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	sec := &secret{value: "token-1"}
	tok := &redisconn.SecretToken{Secrets: sec, SecretID: "s", Refresh: redisconn.TokenRefresh, Now: func() time.Time { return now }}
	get := func() string {
		_, p, err := tok.Credentials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, second := get(), get()
	if first != "token-1" || second != "token-1" || sec.reads != 1 {
		t.Fatalf("cached reads: %d", sec.reads)
	}
	sec.value = "token-2"
	now = now.Add(redisconn.TokenRefresh)
	if got := get(); got != "token-2" {
		t.Fatalf("after refresh: %s", got)
	}
	sec.err = errors.New("throttled")
	now = now.Add(redisconn.TokenRefresh)
	if got := get(); got != "token-2" {
		t.Fatalf("failed re-read: %s, want the last token", got)
	}
	if _, _, err := (&redisconn.SecretToken{Secrets: sec, SecretID: "s", Refresh: time.Minute}).Credentials(ctx); err == nil {
		t.Fatal("a first read that fails must fail")
	}
}
