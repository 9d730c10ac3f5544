package rotator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
)

func TestLoadChecksTheKindAndItsSettings(t *testing.T) {
	for env, want := range map[string]map[string]string{
		"ROTATION_KIND":         {},
		"must be redis-auth":    {"ROTATION_KIND": "onlyfans-sessions"},
		"REPLICATION_GROUP_ID":  {"ROTATION_KIND": "redis-auth"},
		"redis-auth only":       {"ROTATION_KIND": "session-health", "SESSION_SECRET_PREFIX": "p/", "REDIS_ADDR": "h:1"},
		"SESSION_SECRET_PREFIX": {"ROTATION_KIND": "session-health"},
		"shorter than a client": {"ROTATION_KIND": "redis-auth", "REPLICATION_GROUP_ID": "rg", "ENFORCE_AFTER": "5m"},
	} {
		if _, err := rotator.Load(want); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("Load(%v) = %v, want an error mentioning %q", want, err, env)
		}
	}
	for _, s := range []rotator.Settings{
		{Kind: rotator.RedisAuth, ReplicationGroup: "rg", RedisAddr: "h:6380", EnforceAfter: 2 * time.Hour, ApplyWait: rotator.DefaultApplyWait, ApplyPoll: rotator.DefaultApplyPoll, SessionRenewAfter: rotator.DefaultSessionRenewAfter},
		{Kind: rotator.SessionHealth, SessionSecretPrefix: "huntaze/dev/onlyfans-session/", Environment: "dev", EnforceAfter: rotator.DefaultEnforceAfter, SessionRenewAfter: 30 * 24 * time.Hour},
	} {
		if back, err := rotator.Load(s.Env()); err != nil || back != s {
			t.Fatalf("Load(Env()) = %+v, %v; want %+v", back, err, s)
		}
	}
}
