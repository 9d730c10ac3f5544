// Package redisclient opens the Redis client of a Lambda or service: TLS to
// ElastiCache, AUTH token from Secrets Manager, short timeouts. The secret
// is read through SecretReader, so that a Lambda can read it without the
// SDK's Secrets Manager client (internal/awsjson); internal/redisconn is
// this package with that client.
package redisclient

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Settings read from the environment by each binary.
type Settings struct {
	Addr string `env:"REDIS_ADDR"`
	// TLS is on in AWS (ElastiCache in-transit encryption); off for a local
	// redis-server.
	TLS bool `env:"REDIS_TLS" envDefault:"true"`
	// One of: the AUTH token itself (local runs) or the ARN of the Secrets
	// Manager secret holding it (AWS). Neither means no AUTH.
	AuthToken     string        `env:"REDIS_AUTH_TOKEN"`
	AuthSecretARN string        `env:"REDIS_AUTH_SECRET_ARN"`
	Timeout       time.Duration `env:"REDIS_TIMEOUT" envDefault:"1s"`
}

// Validate reports contradictory settings.
func (s Settings) Validate() error {
	if s.AuthToken != "" && s.AuthSecretARN != "" {
		return fmt.Errorf("set REDIS_AUTH_TOKEN or REDIS_AUTH_SECRET_ARN, not both")
	}
	return nil
}

// SecretReader returns a secret's current (AWSCURRENT) string value.
type SecretReader interface {
	SecretString(ctx context.Context, id string) (string, error)
}

// Connect returns a client (it does not dial yet). secrets may be nil when
// no secret ARN is set.
func Connect(ctx context.Context, s Settings, secrets SecretReader) (*redis.Client, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	opts := &redis.Options{
		Addr: s.Addr, Password: s.AuthToken,
		DialTimeout: 2 * s.Timeout, ReadTimeout: s.Timeout, WriteTimeout: s.Timeout,
		// One retry: callers fail closed rather than hold a request.
		MaxRetries: 1,
	}
	if s.AuthSecretARN != "" {
		tokens := &SecretToken{Secrets: secrets, SecretID: s.AuthSecretARN, Refresh: TokenRefresh}
		if _, _, err := tokens.Credentials(ctx); err != nil {
			return nil, err
		}
		opts.CredentialsProviderContext = tokens.Credentials
		opts.ConnMaxLifetime = ConnMaxLifetime
	}
	if s.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewClient(opts), nil
}

// The AUTH token rotates (functions/rotation): ROTATE makes old and new
// valid, and once every client uses the new one, SET makes the old one
// invalid. A client uses the token of at most MaxTokenAge ago: each new
// connection AUTHs with the secret's current value, re-read every
// TokenRefresh, and no connection lives past ConnMaxLifetime.
const (
	TokenRefresh    = 5 * time.Minute
	ConnMaxLifetime = 15 * time.Minute
	MaxTokenAge     = TokenRefresh + ConnMaxLifetime
)

// SecretToken reads the AUTH token from Secrets Manager (AWSCURRENT) for
// each new connection, cached for Refresh.
type SecretToken struct {
	Secrets  SecretReader
	SecretID string
	Refresh  time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	mu      sync.Mutex
	token   string
	fetched time.Time
}

// Credentials is go-redis's CredentialsProviderContext: no user name (the
// default user), the current token. A failed re-read keeps the last token.
func (t *SecretToken) Credentials(ctx context.Context) (string, string, error) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && now().Sub(t.fetched) < t.Refresh {
		return "", t.token, nil
	}
	token, err := t.Secrets.SecretString(ctx, t.SecretID)
	if err != nil {
		if t.token != "" {
			return "", t.token, nil
		}
		return "", "", fmt.Errorf("redis auth secret %s: %w", t.SecretID, err)
	}
	t.token, t.fetched = token, now()
	return "", t.token, nil
}
