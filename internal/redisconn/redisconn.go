// Package redisconn opens the Redis client of a service that has the AWS
// SDK's Secrets Manager client anyway (the scraper, the rotation): the
// client of internal/redisclient, the AUTH token read with that SDK
// client. The Lambdas use redisclient directly, without the SDK client.
package redisconn

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/internal/redisclient"
)

// Settings read from the environment by each binary.
type Settings = redisclient.Settings

// The token's lifetimes (redisclient).
const (
	TokenRefresh    = redisclient.TokenRefresh
	ConnMaxLifetime = redisclient.ConnMaxLifetime
	MaxTokenAge     = redisclient.MaxTokenAge
)

// SecretGetter is the part of the Secrets Manager client Connect uses.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Connect returns a client (it does not dial yet). secrets may be nil when
// no secret ARN is set.
func Connect(ctx context.Context, s Settings, secrets SecretGetter) (*redis.Client, error) {
	var reader redisclient.SecretReader
	if secrets != nil {
		reader = sdkSecrets{secrets}
	}
	return redisclient.Connect(ctx, s, reader)
}

// sdkSecrets reads secrets with the SDK's client.
type sdkSecrets struct{ client SecretGetter }

func (s sdkSecrets) SecretString(ctx context.Context, id string) (string, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

// SecretToken is redisclient.SecretToken reading with the SDK's client:
// the AUTH token (AWSCURRENT) for each new connection, cached for Refresh.
type SecretToken struct {
	Secrets  SecretGetter
	SecretID string
	Refresh  time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	once  sync.Once
	token *redisclient.SecretToken
}

// Credentials is go-redis's CredentialsProviderContext: no user name (the
// default user), the current token. A failed re-read keeps the last token.
func (t *SecretToken) Credentials(ctx context.Context) (string, string, error) {
	t.once.Do(func() {
		t.token = &redisclient.SecretToken{Secrets: sdkSecrets{t.Secrets}, SecretID: t.SecretID, Refresh: t.Refresh, Now: t.Now}
	})
	return t.token.Credentials(ctx)
}
