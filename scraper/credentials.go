package scraper

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// CredentialStore returns a creator's session credentials.
type CredentialStore interface {
	Get(ctx context.Context, creator string) (onlyfans.Credentials, error)
}

// ParseCredentials reads {"<creator>": {"sessionCookie": "..."}, ...}.
func ParseCredentials(data []byte) (map[string]onlyfans.Credentials, error) {
	var m map[string]onlyfans.Credentials
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	return m, nil
}

// StaticCredentials is a fixed map (local runs: from a file or env).
type StaticCredentials map[string]onlyfans.Credentials

// Get implements CredentialStore.
func (s StaticCredentials) Get(_ context.Context, creator string) (onlyfans.Credentials, error) {
	c, ok := s[creator]
	if !ok {
		return onlyfans.Credentials{}, fmt.Errorf("no credentials for creator %s", creator)
	}
	return c, nil
}

// FileCredentials loads a StaticCredentials from a JSON file.
func FileCredentials(path string) (StaticCredentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCredentials(b)
}

// SecretsManagerCredentials reads the map from one secret, cached for TTL so
// a rotation is picked up without a restart.
type SecretsManagerCredentials struct {
	Client interface {
		GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	}
	SecretID string
	TTL      time.Duration

	mu      sync.Mutex
	cache   map[string]onlyfans.Credentials
	fetched time.Time
}

// Get implements CredentialStore.
func (s *SecretsManagerCredentials) Get(ctx context.Context, creator string) (onlyfans.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil || time.Since(s.fetched) > s.TTL {
		out, err := s.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.SecretID)})
		if err != nil {
			return onlyfans.Credentials{}, fmt.Errorf("credentials secret: %w", err)
		}
		m, err := ParseCredentials([]byte(aws.ToString(out.SecretString)))
		if err != nil {
			return onlyfans.Credentials{}, err
		}
		s.cache, s.fetched = m, time.Now()
	}
	return StaticCredentials(s.cache).Get(ctx, creator)
}
