package main

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/redisconn"
)

// Settings is everything the Lambda reads from its environment. The CDK
// stack sets these; a local run sets them by hand (see README).
type Settings struct {
	Environment        string `env:"ENVIRONMENT" envDefault:"dev"`
	SourceQueueURL     string `env:"RATE_LIMITER_QUEUE_URL,required,notEmpty"`
	DeadLetterQueueURL string `env:"RATE_LIMITER_DLQ_URL,required,notEmpty"`
	WorkflowsQueueURL  string `env:"WORKFLOWS_QUEUE_URL,required,notEmpty"`

	Redis redisconn.Settings

	Limit       int           `env:"RATE_LIMIT" envDefault:"10"`
	Window      time.Duration `env:"RATE_WINDOW" envDefault:"60s"`
	ReturnSlack time.Duration `env:"RATE_RETURN_SLACK" envDefault:"1s"`
	KeyPrefix   string        `env:"RATE_KEY_PREFIX" envDefault:"rl"`

	Version          string        `env:"RATE_LIMITER_VERSION" envDefault:"1"`
	OutageBackoff    time.Duration `env:"OUTAGE_BACKOFF" envDefault:"5s"`
	OutageBackoffMax time.Duration `env:"OUTAGE_BACKOFF_MAX" envDefault:"15m"`
}

// LoadSettings parses and checks the environment, reporting every problem
// at once.
func LoadSettings(environ map[string]string) (Settings, error) {
	var s Settings
	var errs []error
	if err := env.ParseWithOptions(&s, env.Options{Environment: environ}); err != nil {
		errs = append(errs, namedEnvErrors(err, reflect.TypeFor[Settings]())...)
	}
	if s.Redis.Addr == "" {
		errs = append(errs, errors.New("REDIS_ADDR is required"))
	}
	if err := s.Redis.Validate(); err != nil {
		errs = append(errs, err)
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

// Limiter returns the limiter configuration. Keys are prefixed with the
// environment so that environments can share a Redis in development.
func (s Settings) Limiter() ratelimit.Config {
	return ratelimit.Config{Limit: s.Limit, Window: s.Window, KeyPrefix: s.KeyPrefix + ":" + s.Environment}
}

// Handler returns the handler configuration.
func (s Settings) Handler() handler.Config {
	return handler.Config{
		SourceQueueURL: s.SourceQueueURL, WorkflowsQueueURL: s.WorkflowsQueueURL,
		DeadLetterQueueURL: s.DeadLetterQueueURL, Version: s.Version,
		ReturnSlack: s.ReturnSlack, OutageBackoff: s.OutageBackoff, OutageBackoffMax: s.OutageBackoffMax,
	}
}

// namedEnvErrors rewrites the library's parse errors, which name the Go
// field, to name the environment variable the operator has to fix.
func namedEnvErrors(err error, t reflect.Type) []error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []error{err}
	}
	out := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := t.FieldByName(pe.Name); ok {
				key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
				out = append(out, fmt.Errorf("%s: %w", key, pe.Err))
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// environ returns the process environment as a map.
func environ() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}
