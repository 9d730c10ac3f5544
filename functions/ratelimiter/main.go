// Command ratelimiter is the rate limiter Lambda (provided.al2023, arm64).
// It only wires real clients; the logic is in ./handler and
// internal/ratelimit.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/redisconn"
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
	rdb, err := redisconn.Connect(ctx, s.Redis, secretsmanager.NewFromConfig(awsCfg))
	if err != nil {
		return nil, err
	}
	limiter, err := ratelimit.New(rdb, s.Limiter())
	if err != nil {
		return nil, err
	}
	log.Info("rate limiter configured", "environment", s.Environment, "limit", s.Limit, "window", s.Window.String(),
		"redis", s.Redis.Addr, "redis_tls", s.Redis.TLS, "version", s.Version)
	emf := metrics.New(os.Stdout, map[string]string{"Service": "rate-limiter", "Environment": s.Environment}, time.Now)
	return handler.New(s.Handler(), limiter, sqs.NewFromConfig(awsCfg), log, emf, time.Now)
}
