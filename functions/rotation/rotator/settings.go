package rotator

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/redisconn"
)

// Defaults of the durations (the env tags' defaults).
const (
	DefaultEnforceAfter      = time.Hour
	DefaultSessionRenewAfter = 80 * 24 * time.Hour
)

// Settings is the rotation function's environment; the CDK stack renders
// it from this struct.
type Settings struct {
	Kind Kind `env:"ROTATION_KIND,required,notEmpty"`
	// ReplicationGroup is the ElastiCache group whose AUTH token rotates
	// (redis-auth only).
	ReplicationGroup string `env:"REPLICATION_GROUP_ID"`
	// RedisAddr, when set, is where a new token is tested with AUTH + PING
	// before it becomes current (redis-auth only).
	RedisAddr string `env:"REDIS_ADDR"`
	// EnforceAfter: how long a token is current before the old one is
	// dropped (SET); at least redisconn.MaxTokenAge (redis-auth only).
	EnforceAfter time.Duration `env:"ENFORCE_AFTER" envDefault:"1h"`
	// ApplyWait bounds the wait for ElastiCache to apply a token change;
	// ApplyPoll is the time between two looks (redis-auth only;
	// DefaultApplyWait and DefaultApplyPoll).
	ApplyWait time.Duration `env:"APPLY_WAIT" envDefault:"4m"`
	ApplyPoll time.Duration `env:"APPLY_POLL" envDefault:"10s"`

	// SessionSecretPrefix names the session secrets to check
	// (session-health only).
	SessionSecretPrefix string `env:"SESSION_SECRET_PREFIX"`
	// SessionRenewAfter: a session whose current value is older is due for
	// renewal (80 days: 10 days to act before seed 003 R8.5's 90).
	SessionRenewAfter time.Duration `env:"SESSION_RENEW_AFTER" envDefault:"1920h"`
	// SessionProbe: how the session health check asks the site about each
	// session (session-health only; a profile-style setting, see
	// SessionProbeSettings).
	SessionProbe SessionProbeSettings
	// Environment is the metrics' Environment dimension.
	Environment string `env:"ENVIRONMENT"`
}

// Load parses and checks the environment.
func Load(environ map[string]string) (Settings, error) {
	s, errs := envconfig.Parse[Settings](environ)
	switch s.Kind {
	case RedisAuth:
		if s.ReplicationGroup == "" {
			errs = append(errs, errors.New("REPLICATION_GROUP_ID is required for ROTATION_KIND=redis-auth"))
		}
		if s.EnforceAfter < redisconn.MaxTokenAge {
			errs = append(errs, fmt.Errorf("ENFORCE_AFTER %s is shorter than a client keeps a token (%s): the old token would be dropped while in use", s.EnforceAfter, redisconn.MaxTokenAge))
		}
		if s.ApplyWait <= 0 || s.ApplyPoll <= 0 {
			errs = append(errs, fmt.Errorf("APPLY_WAIT %s and APPLY_POLL %s must be positive", s.ApplyWait, s.ApplyPoll))
		}
		if s.SessionSecretPrefix != "" {
			errs = append(errs, errors.New("SESSION_SECRET_PREFIX is for ROTATION_KIND=session-health only"))
		}
	case SessionHealth:
		if s.ReplicationGroup != "" || s.RedisAddr != "" {
			errs = append(errs, errors.New("REPLICATION_GROUP_ID and REDIS_ADDR are for ROTATION_KIND=redis-auth only"))
		}
		if s.SessionSecretPrefix == "" {
			errs = append(errs, errors.New("SESSION_SECRET_PREFIX is required for ROTATION_KIND=session-health"))
		}
		if s.SessionRenewAfter <= 0 {
			errs = append(errs, errors.New("SESSION_RENEW_AFTER must be positive"))
		}
		if p := s.SessionProbe; p.URL != "" {
			if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				errs = append(errs, fmt.Errorf("SESSION_CHECK_URL %q must be an http(s) URL of a page only a logged-in session sees", p.URL))
			}
			if p.CookieName == "" {
				errs = append(errs, errors.New("SESSION_CHECK_COOKIE must name the session cookie"))
			}
			if p.LoginURLPart == "" {
				errs = append(errs, errors.New("SESSION_CHECK_LOGIN_URL_PART must name the login page's URL part"))
			}
			if p.Timeout <= 0 {
				errs = append(errs, errors.New("SESSION_CHECK_TIMEOUT must be positive"))
			}
		}
	case "":
	default:
		errs = append(errs, fmt.Errorf("ROTATION_KIND must be %s or %s, got %q", RedisAuth, SessionHealth, s.Kind))
	}
	if len(errs) > 0 {
		return Settings{}, fmt.Errorf("rotation settings: %w", errors.Join(errs...))
	}
	return s, nil
}

// Env renders the settings as the function's environment.
func (s Settings) Env() map[string]string { return envconfig.Environ(s) }
