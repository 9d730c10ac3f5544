package setup_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/functions/ratelimiter/setup"
)

func validEnv() map[string]string {
	return map[string]string{
		"INTAKE_QUEUE_URL":    "http://127.0.0.1:1/000000000000/huntaze-rate-limiter-queue",
		"INTAKE_DLQ_URL":      "http://127.0.0.1:1/000000000000/huntaze-rate-limiter-dlq",
		"WORKFLOWS_QUEUE_URL": "http://127.0.0.1:1/000000000000/huntaze-hybrid-workflows.fifo",
		"REDIS_ADDR":          "127.0.0.1:6379",
	}
}

func TestLoadSettingsDefaultsToTheOnlyFansLimit(t *testing.T) {
	s, err := setup.Load(validEnv())
	if err != nil {
		t.Fatal(err)
	}
	if s.Limit.Count != 10 || s.Limit.Window != time.Minute || !s.Redis.TLS || s.Limiter().KeyPrefix != "rl:dev" {
		t.Fatalf("settings = %+v", s)
	}
}

func TestLoadSettingsReportsEveryProblem(t *testing.T) {
	// GIVEN an environment missing a queue URL, with a bad window and both auth settings
	e := validEnv()
	delete(e, "WORKFLOWS_QUEUE_URL")
	e["RATE_WINDOW"] = "soon"
	e["REDIS_AUTH_TOKEN"] = "t"
	e["REDIS_AUTH_SECRET_ARN"] = "arn:aws:secretsmanager:us-east-1:1:secret:x"
	e["RATE_LIMIT"] = "0"

	// WHEN it is loaded
	_, err := setup.Load(e)

	// THEN the error names each problem
	for _, want := range []string{"WORKFLOWS_QUEUE_URL", "RATE_WINDOW", "not both", "limit must be at least 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestEnvLoadsBackToTheSameSettings(t *testing.T) {
	s, err := setup.Load(validEnv())
	if err != nil {
		t.Fatal(err)
	}
	s.Limit.Window, s.Redis.TLS = 3*time.Second, false
	back, err := setup.Load(s.Env())
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("Load(Env()) = %+v, %v; want %+v", back, err, s)
	}
}
