// Package featureflag reads the RATE_LIMITER_ENABLED feature flag at runtime (seed
// 000 R7): from a parameter (SSM Parameter Store in AWS) cached for a short
// TTL, so that flipping it needs no restart, with the environment variable
// as the value when the parameter is absent.
package featureflag

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Source reads the raw flag value; found is false when it does not exist.
// In AWS it is the SSM parameter (awsjson.Parameter).
type Source interface {
	Get(ctx context.Context) (value string, found bool, err error)
}

// Flag is a cached boolean flag.
type Flag struct {
	source   Source
	fallback bool
	ttl      time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex
	value   bool
	origin  string
	fetched time.Time
	valid   bool
}

// New returns a flag read from source (nil: only the fallback), cached for ttl.
func New(source Source, fallback bool, ttl time.Duration, now func() time.Time, log *slog.Logger) *Flag {
	return &Flag{source: source, fallback: fallback, ttl: ttl, now: now, log: log}
}

// Enabled returns the flag and where its value came from ("parameter",
// "environment", or "last known" when the parameter cannot be read).
func (f *Flag) Enabled(ctx context.Context) (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.valid && f.now().Sub(f.fetched) < f.ttl {
		return f.value, f.origin
	}
	value, origin := f.fallback, "environment"
	if f.source != nil {
		raw, found, err := f.source.Get(ctx)
		switch {
		case err != nil:
			// Keep the last known value rather than flipping on an outage.
			if f.valid {
				value, origin = f.value, "last known"
			}
			f.log.Warn("feature flag parameter unreadable; using "+origin+" value", "error", err, "enabled", value)
		case found:
			b, perr := Parse(raw)
			if perr != nil {
				f.log.Warn("feature flag parameter invalid; using environment value", "error", perr, "enabled", value)
			} else {
				value, origin = b, "parameter"
			}
		}
	}
	if f.valid && value != f.value {
		f.log.Info("rate limiter flag changed", "enabled", value, "source", origin)
	}
	f.value, f.origin, f.fetched, f.valid = value, origin, f.now(), true
	return value, origin
}

// Parse reads true/false in the usual spellings.
func Parse(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "true", "yes", "on", "enabled":
		return true, nil
	case "0", "false", "no", "off", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("flag value %q is not a boolean", s)
}

// Static is a Source with a fixed answer, for local runs.
type Static struct{ Value string }

// Get implements Source.
func (s Static) Get(context.Context) (string, bool, error) {
	return s.Value, s.Value != "", nil
}

// ParseEnv reads the environment default; empty means enabled (the safe
// side: messages go through the limiter).
func ParseEnv(s string) (bool, error) {
	if strings.TrimSpace(s) == "" {
		return true, nil
	}
	return Parse(s)
}

// Switch is a Source an operator (or a test) flips in process: the local
// stack's stand-in for the SSM parameter. The zero value is absent.
type Switch struct {
	mu    sync.Mutex
	value string
}

// Set sets the value ("" makes it absent).
func (s *Switch) Set(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value = v
}

// Get implements Source.
func (s *Switch) Get(context.Context) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.value, s.value != "", nil
}
