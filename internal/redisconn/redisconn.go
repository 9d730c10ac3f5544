// Package redisconn opens the Redis client of a Lambda or service: TLS to
// ElastiCache, AUTH token from Secrets Manager, short timeouts.
package redisconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
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

// SecretGetter is the part of the Secrets Manager client Connect uses.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// Connect returns a client (it does not dial yet). secrets may be nil when
// no secret ARN is set.
func Connect(ctx context.Context, s Settings, secrets SecretGetter) (*redis.Client, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	token := s.AuthToken
	if s.AuthSecretARN != "" {
		out, err := secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.AuthSecretARN)})
		if err != nil {
			return nil, fmt.Errorf("redis auth secret %s: %w", s.AuthSecretARN, err)
		}
		token = aws.ToString(out.SecretString)
	}
	opts := &redis.Options{
		Addr: s.Addr, Password: token,
		DialTimeout: 2 * s.Timeout, ReadTimeout: s.Timeout, WriteTimeout: s.Timeout,
		// One retry: callers fail closed rather than hold a request.
		MaxRetries: 1,
	}
	if s.TLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return redis.NewClient(opts), nil
}
