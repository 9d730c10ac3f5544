// Package setup builds the API's dependencies from the environment; the API
// Lambda, the local API server and the replay function share it.
package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	replaysetup "github.com/huntaze/message-pipeline/functions/replay/setup"
	"github.com/huntaze/message-pipeline/internal/auth"
	"github.com/huntaze/message-pipeline/internal/awsjson"
	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/featureflag"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/redisclient"
)

// Settings is the API's environment.
type Settings struct {
	// The replay's settings (ENVIRONMENT, the four queue URLs, the
	// fallback table, SEND_MAX_BACKOFF, REPLAY_BATCH): the API sends to the
	// same queues, stores in the same table, and its replay route runs the
	// same replay.
	replaysetup.Settings

	IdempotencyTable string `env:"IDEMPOTENCY_TABLE"`

	// RateLimiterEnabled is the flag's value when FlagParameter is unset or
	// absent (seed 000 R7.1).
	RateLimiterEnabled string        `env:"RATE_LIMITER_ENABLED" envDefault:"true"`
	FlagParameter      string        `env:"RATE_LIMITER_FLAG_PARAMETER"`
	FlagCacheTTL       time.Duration `env:"RATE_LIMITER_FLAG_TTL" envDefault:"30s"`

	Redis redisclient.Settings

	// AuthMode: "apigateway" trusts the HTTP API JWT authorizer's claims
	// (Lambda); "jwt" verifies tokens here (local server).
	AuthMode      string `env:"AUTH_MODE" envDefault:"apigateway"`
	JWTHMACSecret string `env:"JWT_HMAC_SECRET"`
	JWTJWKSURL    string `env:"JWT_JWKS_URL"`
	JWTIssuer     string `env:"JWT_ISSUER"`
	JWTAudience   string `env:"JWT_AUDIENCE"`
	AdminScope    string `env:"ADMIN_SCOPE" envDefault:"admin"`
	OpsScope      string `env:"OPS_SCOPE" envDefault:"ops"`
	ServiceScope  string `env:"SERVICE_SCOPE" envDefault:"messages:send-any-creator"`
	CreatorsClaim string `env:"CREATORS_CLAIM" envDefault:"creators"`

	// Backpressure, kept in the idempotency table so it holds across
	// Lambda instances: requests per caller per window, and messages
	// waiting per creator, draining at the stack's per-creator Limit (one
	// per Window/Count, 6 s at 10 per 60 s).
	CallerRequests int           `env:"CALLER_REQUESTS" envDefault:"50"`
	CallerWindow   time.Duration `env:"CALLER_WINDOW" envDefault:"1s"`
	CreatorWaiting int           `env:"CREATOR_WAITING_CAP" envDefault:"10000"`
	Limit          ratelimit.Limit
}

// Load parses the environment.
func Load(environ map[string]string) (Settings, error) {
	s, errs := envconfig.Parse[Settings](environ)
	if _, err := featureflag.ParseEnv(s.RateLimiterEnabled); err != nil {
		errs = append(errs, fmt.Errorf("RATE_LIMITER_ENABLED: %w", err))
	}
	switch s.AuthMode {
	case "apigateway":
	case "jwt":
		if (s.JWTHMACSecret == "") == (s.JWTJWKSURL == "") {
			errs = append(errs, errors.New("AUTH_MODE=jwt needs exactly one of JWT_HMAC_SECRET and JWT_JWKS_URL"))
		}
		if s.JWTIssuer == "" || s.JWTAudience == "" {
			errs = append(errs, errors.New("AUTH_MODE=jwt needs JWT_ISSUER and JWT_AUDIENCE: tokens are checked against both"))
		}
	default:
		errs = append(errs, fmt.Errorf("AUTH_MODE must be apigateway or jwt, got %q", s.AuthMode))
	}
	if err := s.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Settings{}, fmt.Errorf("api settings: %w", errors.Join(errs...))
	}
	return s, nil
}

// missing says why sending cannot work, or "".
func (s Settings) missing() string {
	m := s.Missing()
	if s.IdempotencyTable == "" {
		m = append(m, "IDEMPOTENCY_TABLE")
		slices.Sort(m)
	}
	if len(m) == 0 {
		return ""
	}
	return strings.Join(m, ", ") + " not set"
}

// Replay are the replay's settings among the API's (the replay Lambda's
// environment).
func (s Settings) Replay() replaysetup.Settings { return s.Settings }

// Defaults are the settings every variable left unset gives.
func Defaults() Settings { return envconfig.Defaults[Settings]() }

// ServerConfig is the server's configuration: every field from the
// settings (tests start from Defaults().ServerConfig()).
func (s Settings) ServerConfig() api.Config {
	return api.Config{
		Queues:     s.Queues(),
		AdminScope: s.AdminScope, OpsScope: s.OpsScope, ServiceScope: s.ServiceScope, IdempotencyTTL: 24 * time.Hour, IdempotencyStale: time.Minute, ReplayBatch: s.ReplayBatch,
		CallerRequests: s.CallerRequests, CallerWindow: s.CallerWindow, CreatorWaiting: s.CreatorWaiting, CreatorDrain: s.Limit.Drain(),
		Unavailable: s.missing(),
	}
}

// Env renders the settings as the function's environment.
func (s Settings) Env() map[string]string { return envconfig.Environ(s) }

// Build makes the server configuration and dependencies from settings and an
// AWS configuration (the default chain in Lambda, local endpoints in `make
// dev`); EMF metrics go to metricsOut. Missing queue or table settings or
// credentials are not an error: they are logged and sends answer 503.
func Build(ctx context.Context, s Settings, awsCfg aws.Config, log *slog.Logger, metricsOut io.Writer) (api.Config, api.Deps, error) {
	cfg := s.ServerConfig()
	d := api.Deps{Log: log, Now: time.Now, Metrics: metrics.New(metricsOut, map[string]string{"Service": "api", "Environment": s.Environment}, time.Now)}
	if cfg.Unavailable == "" {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if _, err := awsCfg.Credentials.Retrieve(cctx); err != nil {
			cfg.Unavailable = "no AWS credentials: " + err.Error()
		}
		cancel()
	}
	d.Flag = s.flag(awsCfg, log)
	var err error
	if d.Auth, err = s.authenticator(ctx); err != nil {
		return cfg, d, err
	}
	if s.Redis.Addr != "" {
		rdb, err := redisclient.Connect(ctx, s.Redis, awsjson.Secrets{Client: awsjson.New(awsCfg, awsjson.SecretsManager)})
		if err != nil {
			return cfg, d, err
		}
		d.Redis = func(ctx context.Context) error { return rdb.Ping(ctx).Err() }
	}
	// Seed 000 R7.4: the flag's state is logged at start, sending or not.
	enabled, origin := d.Flag.Enabled(ctx)
	log.Info("rate limiter status", "enabled", enabled, "source", origin, "environment", s.Environment)
	if cfg.Unavailable != "" {
		log.Warn("sending disabled: AWS is not configured; /send answers 503", "reason", cfg.Unavailable)
		return cfg, d, nil
	}
	statsClient := sqs.NewFromConfig(awsCfg)
	ddb := dynamodb.NewFromConfig(awsCfg)
	d.Sender = s.Sender(awsCfg)
	d.Fallback = s.Fallback(ddb, log)
	d.Idempotency = idempotency.NewStore(ddb, s.IdempotencyTable, cfg.IdempotencyTTL, time.Now)
	d.Quota = quota.NewStore(ddb, s.IdempotencyTable, idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now)
	d.QueueStats = statsClient
	checkConnectivity(ctx, statsClient, s.IntakeQueueURL, log)
	return cfg, d, nil
}

// config is the server's configuration.
// flag is RATE_LIMITER_ENABLED: the SSM parameter when named, else the
// environment's value.
func (s Settings) flag(awsCfg aws.Config, log *slog.Logger) *featureflag.Flag {
	var source featureflag.Source
	if s.FlagParameter != "" {
		source = awsjson.Parameter{Client: awsjson.New(awsCfg, awsjson.SSM), Name: s.FlagParameter}
	}
	envDefault, _ := featureflag.ParseEnv(s.RateLimiterEnabled)
	return featureflag.New(source, envDefault, s.FlagCacheTTL, time.Now, log)
}

// authenticator is AUTH_MODE's: API Gateway's claims, or a token verified
// here with the HMAC secret or the JWKS.
func (s Settings) authenticator(ctx context.Context) (auth.Authenticator, error) {
	switch {
	case s.AuthMode != "jwt":
		return auth.APIGatewayClaims{CreatorsClaim: s.CreatorsClaim}, nil
	case s.JWTHMACSecret != "":
		v := auth.NewHMACVerifier([]byte(s.JWTHMACSecret), s.JWTIssuer, s.JWTAudience, time.Now)
		v.CreatorsClaim = s.CreatorsClaim
		return v, nil
	}
	v, err := auth.NewJWKSVerifier(ctx, s.JWTJWKSURL, s.JWTIssuer, s.JWTAudience, time.Now)
	if err != nil {
		return nil, err
	}
	v.CreatorsClaim = s.CreatorsClaim
	return v, nil
}

// checkConnectivity reads the queue's attributes once (seed 000 R1.5). A
// failure is logged, never fatal: a transient error must not crash-loop.
func checkConnectivity(ctx context.Context, client *sqs.Client, url string, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := client.GetQueueAttributes(cctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url)}); err != nil {
		log.Warn("queue not reachable at startup; sends will retry and fall back", "queue_url", url, "error", err)
		return
	}
	log.Info("queue reachable", "queue_url", url)
}
