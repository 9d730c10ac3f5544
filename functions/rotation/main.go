// Command rotation is the Secrets Manager rotation Lambda of the Redis AUTH
// token (ROTATION_KIND=redis-auth) and of the OnlyFans sessions
// (ROTATION_KIND=onlyfans-sessions). See package rotator.
package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
	"github.com/huntaze/message-pipeline/internal/envconfig"
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
	r := &rotator.Rotator{
		Kind:             s.Kind,
		Secrets:          secretsmanager.NewFromConfig(cfg),
		Cache:            elasticache.NewFromConfig(cfg),
		ReplicationGroup: s.ReplicationGroup,
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
