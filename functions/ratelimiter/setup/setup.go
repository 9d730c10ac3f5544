// Package setup is the rate limiter's wiring: its settings (the Lambda's
// environment, which the CDK stack renders from the same struct) and Build,
// which main, `make dev` and the end-to-end tests all call.
package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/awsjson"
	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/featureflag"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/redisclient"
)

// Settings is everything the Lambda reads from its environment.
type Settings struct {
	Environment       string `env:"ENVIRONMENT" envDefault:"dev"`
	IntakeQueueURL    string `env:"INTAKE_QUEUE_URL,required,notEmpty"`
	IntakeDLQURL      string `env:"INTAKE_DLQ_URL,required,notEmpty"`
	WorkflowsQueueURL string `env:"WORKFLOWS_QUEUE_URL,required,notEmpty"`

	Redis redisclient.Settings

	// Limit is the stack's per-creator limit, the scraper gate's too.
	Limit       ratelimit.Limit
	ReturnSlack time.Duration `env:"RATE_RETURN_SLACK" envDefault:"1s"`
	KeyPrefix   string        `env:"RATE_KEY_PREFIX" envDefault:"rl"`

	// RateLimiterEnabled is the flag's value when FlagParameter is unset or
	// absent; the parameter (SSM, cached FlagCacheTTL) is the API's too.
	// Off: records are forwarded in order without the rate check.
	RateLimiterEnabled string        `env:"RATE_LIMITER_ENABLED" envDefault:"true"`
	FlagParameter      string        `env:"RATE_LIMITER_FLAG_PARAMETER"`
	FlagCacheTTL       time.Duration `env:"RATE_LIMITER_FLAG_TTL" envDefault:"30s"`

	Version          string        `env:"RATE_LIMITER_VERSION" envDefault:"1"`
	OutageBackoff    time.Duration `env:"OUTAGE_BACKOFF" envDefault:"5s"`
	OutageBackoffMax time.Duration `env:"OUTAGE_BACKOFF_MAX" envDefault:"15m"`
}

// Load parses and checks the environment, reporting every problem at once.
func Load(environ map[string]string) (Settings, error) {
	s, errs := envconfig.Parse[Settings](environ)
	if s.Redis.Addr == "" {
		errs = append(errs, errors.New("REDIS_ADDR is required"))
	}
	if err := s.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := featureflag.ParseEnv(s.RateLimiterEnabled); err != nil {
		errs = append(errs, fmt.Errorf("RATE_LIMITER_ENABLED: %w", err))
	}
	if err := s.Limiter().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := s.Handler().Validate(); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Settings{}, fmt.Errorf("rate limiter settings: %w", errors.Join(errs...))
	}
	return s, nil
}

// Defaults are the settings every variable left unset gives.
func Defaults() Settings { return envconfig.Defaults[Settings]() }

// Env renders the settings as the Lambda's environment.
func (s Settings) Env() map[string]string { return envconfig.Environ(s) }

// Limiter returns the limiter configuration. Keys are prefixed with the
// environment so that environments can share a Redis in development.
func (s Settings) Limiter() ratelimit.Config {
	return ratelimit.Config{Limit: s.Limit.Count, Window: s.Limit.Window, KeyPrefix: s.KeyPrefix + ":" + s.Environment}
}

// Handler returns the handler configuration.
func (s Settings) Handler() handler.Config {
	return handler.Config{
		IntakeQueueURL: s.IntakeQueueURL, WorkflowsQueueURL: s.WorkflowsQueueURL,
		IntakeDLQURL: s.IntakeDLQURL, Version: s.Version,
		ReturnSlack: s.ReturnSlack, OutageBackoff: s.OutageBackoff, OutageBackoffMax: s.OutageBackoffMax,
	}
}

// Build makes the handler from settings and an AWS configuration (the
// default chain in Lambda, local endpoints in `make dev`). EMF metrics go to
// metricsOut (stdout in Lambda).
func Build(ctx context.Context, s Settings, awsCfg aws.Config, log *slog.Logger, metricsOut io.Writer) (*handler.Handler, error) {
	var source featureflag.Source
	if s.FlagParameter != "" {
		source = awsjson.Parameter{Client: awsjson.New(awsCfg, awsjson.SSM), Name: s.FlagParameter}
	}
	return BuildWithFlag(ctx, s, awsCfg, log, metricsOut, source)
}

// BuildWithFlag is Build with the flag read from source (nil: the
// environment value only). The local stack passes a switch it flips, as
// there is no SSM emulator.
func BuildWithFlag(ctx context.Context, s Settings, awsCfg aws.Config, log *slog.Logger, metricsOut io.Writer, source featureflag.Source) (*handler.Handler, error) {
	rdb, err := redisclient.Connect(ctx, s.Redis, awsjson.Secrets{Client: awsjson.New(awsCfg, awsjson.SecretsManager)})
	if err != nil {
		return nil, err
	}
	limiter, err := ratelimit.New(rdb, s.Limiter())
	if err != nil {
		return nil, err
	}
	log.Info("rate limiter configured", "environment", s.Environment, "limit", s.Limit.Count, "window", s.Limit.Window.String(),
		"redis", s.Redis.Addr, "redis_tls", s.Redis.TLS, "version", s.Version)
	emf := metrics.New(metricsOut, map[string]string{"Service": "rate-limiter", "Environment": s.Environment}, time.Now)
	h, err := handler.New(s.Handler(), limiter, sqs.NewFromConfig(awsCfg), log, emf, time.Now)
	if err != nil {
		return nil, err
	}
	envDefault, _ := featureflag.ParseEnv(s.RateLimiterEnabled)
	flag := featureflag.New(source, envDefault, s.FlagCacheTTL, time.Now, log)
	enabled, origin := flag.Enabled(ctx)
	log.Info("rate limiter status", "enabled", enabled, "source", origin, "environment", s.Environment)
	h.UseFlag(flag)
	return h, nil
}
