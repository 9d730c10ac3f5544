// Command rotation is the Secrets Manager rotation Lambda of the Redis AUTH
// token (ROTATION_KIND=redis-auth, including the scheduled enforceSecret
// step) and the scheduled health check of the OnlyFans session secrets
// (ROTATION_KIND=session-health). See package rotator.
package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/metrics"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	s, err := rotator.Load(envconfig.Process())
	if err != nil {
		log.Error("rotation cannot start", "error", err)
		os.Exit(1)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("rotation cannot start", "error", err)
		os.Exit(1)
	}
	if s.Kind == rotator.SessionHealth {
		c := &rotator.SessionChecker{
			Secrets: secretsmanager.NewFromConfig(cfg), Prefix: s.SessionSecretPrefix, RenewAfter: s.SessionRenewAfter, Log: log,
			Probe: s.SessionProbe, HTTP: &http.Client{Timeout: s.SessionProbe.Timeout},
			Metrics: metrics.New(os.Stdout, map[string]string{"Service": "session-health", "Environment": s.Environment}, nil),
		}
		lambda.Start(func(ctx context.Context) error {
			_, err := c.Check(ctx)
			return err
		})
		return
	}
	r := &rotator.Rotator{
		Kind:             s.Kind,
		Secrets:          secretsmanager.NewFromConfig(cfg),
		Cache:            elasticache.NewFromConfig(cfg),
		ReplicationGroup: s.ReplicationGroup,
		EnforceAfter:     s.EnforceAfter,
		ApplyWait:        s.ApplyWait,
		ApplyPoll:        s.ApplyPoll,
		Log:              log,
	}
	if s.RedisAddr != "" {
		r.TestToken = func(ctx context.Context, token string) error {
			c := redis.NewClient(&redis.Options{Addr: s.RedisAddr, Password: token, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}})
			defer c.Close()
			return c.Ping(ctx).Err()
		}
	}
	lambda.Start(func(ctx context.Context, ev rotator.Event) error {
		err := r.Handle(ctx, ev)
		log.Info("rotation step", "step", ev.Step, "kind", string(r.Kind), "error", err)
		return err
	})
}
