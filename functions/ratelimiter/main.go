// Command ratelimiter is the rate limiter Lambda (provided.al2023, arm64).
// It only wires real clients; the logic is in ./handler and
// internal/ratelimit.
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	h, err := build(context.Background(), environ(), log)
	if err != nil {
		// Failing at init makes the misconfiguration visible in the first
		// invocation's logs and in the Lambda's init error metric.
		log.Error("rate limiter cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

func build(ctx context.Context, environ map[string]string, log *slog.Logger) (*handler.Handler, error) {
	s, err := LoadSettings(environ)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws config: %w", err)
	}
	token := s.RedisAuthToken
	if s.RedisAuthSecretARN != "" {
		out, err := secretsmanager.NewFromConfig(awsCfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(s.RedisAuthSecretARN)})
		if err != nil {
			return nil, fmt.Errorf("redis auth secret %s: %w", s.RedisAuthSecretARN, err)
		}
		token = aws.ToString(out.SecretString)
	}
	opts := &redis.Options{
		Addr: s.RedisAddr, Password: token,
		DialTimeout: 2 * s.RedisTimeout, ReadTimeout: s.RedisTimeout, WriteTimeout: s.RedisTimeout,
		// One retry: a batch that cannot be decided quickly is returned whole
		// (fail closed) rather than holding the Lambda.
		MaxRetries: 1,
	}
	if s.RedisTLS {
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	limiter, err := ratelimit.New(redis.NewClient(opts), s.Limiter())
	if err != nil {
		return nil, err
	}
	log.Info("rate limiter configured", "environment", s.Environment, "limit", s.Limit, "window", s.Window.String(),
		"redis", s.RedisAddr, "redis_tls", s.RedisTLS, "version", s.Version)
	emf := metrics.New(os.Stdout, map[string]string{"Service": "rate-limiter", "Environment": s.Environment}, time.Now)
	return handler.New(s.Handler(), limiter, sqs.NewFromConfig(awsCfg), log, emf, time.Now)
}
