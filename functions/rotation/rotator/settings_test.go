package rotator_test

import (
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
)

func TestLoadChecksTheKindAndItsSettings(t *testing.T) {
	for env, want := range map[string]map[string]string{
		"ROTATION_KIND":        {},
		"must be redis-auth":   {"ROTATION_KIND": "passwords"},
		"REPLICATION_GROUP_ID": {"ROTATION_KIND": "redis-auth"},
		"redis-auth only":      {"ROTATION_KIND": "onlyfans-sessions", "REDIS_ADDR": "h:1"},
	} {
		if _, err := rotator.Load(want); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("Load(%v) = %v, want an error mentioning %q", want, err, env)
		}
	}
	s := rotator.Settings{Kind: rotator.RedisAuth, ReplicationGroup: "rg", RedisAddr: "h:6380"}
	if back, err := rotator.Load(s.Env()); err != nil || back != s {
		t.Fatalf("Load(Env()) = %+v, %v", back, err)
	}
}
