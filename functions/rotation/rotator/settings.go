package rotator

import (
	"errors"
	"fmt"

	"github.com/huntaze/message-pipeline/internal/envconfig"
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
}

// Load parses and checks the environment.
func Load(environ map[string]string) (Settings, error) {
	s, errs := envconfig.Parse[Settings](environ)
	switch s.Kind {
	case RedisAuth:
		if s.ReplicationGroup == "" {
			errs = append(errs, errors.New("REPLICATION_GROUP_ID is required for ROTATION_KIND=redis-auth"))
		}
	case OnlyFansSessions:
		if s.ReplicationGroup != "" || s.RedisAddr != "" {
			errs = append(errs, errors.New("REPLICATION_GROUP_ID and REDIS_ADDR are for ROTATION_KIND=redis-auth only"))
		}
	case "":
	default:
		errs = append(errs, fmt.Errorf("ROTATION_KIND must be %s or %s, got %q", RedisAuth, OnlyFansSessions, s.Kind))
	}
	if len(errs) > 0 {
		return Settings{}, fmt.Errorf("rotation settings: %w", errors.Join(errs...))
	}
	return s, nil
}

// Env renders the settings as the function's environment.
func (s Settings) Env() map[string]string { return envconfig.Environ(s) }
