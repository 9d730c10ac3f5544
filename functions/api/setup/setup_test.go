package setup_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/functions/api/setup"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/test/harness"
)

// isolateAWS keeps the SDK away from real credentials, files and the
// instance metadata service.
func isolateAWS(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
	} {
		t.Setenv(k, v)
	}
}

// defaultAWS is what main passes: the SDK's default chain, read after the
// test has set the environment.
func defaultAWS(t *testing.T) aws.Config {
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestLoadRejectsBadSettings(t *testing.T) {
	_, err := setup.Load(map[string]string{"RATE_LIMITER_ENABLED": "perhaps", "AUTH_MODE": "jwt"})
	for _, want := range []string{"RATE_LIMITER_ENABLED", "JWT_HMAC_SECRET", "JWT_ISSUER and JWT_AUDIENCE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load error %v does not mention %s", err, want)
		}
	}
}

func TestBuildWithoutAWSConfigurationWarnsAndDisablesSending(t *testing.T) {
	// GIVEN no queue URLs
	isolateAWS(t)
	var logs bytes.Buffer
	s, err := setup.Load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	// WHEN the API is built
	cfg, _, err := setup.Build(context.Background(), s, defaultAWS(t), slog.New(slog.NewJSONHandler(&logs, nil)), io.Discard)
	// THEN it starts, with sending disabled and a warning naming what is missing
	if err != nil || !strings.Contains(cfg.Unavailable, "INTAKE_QUEUE_URL") {
		t.Fatalf("Build = %+v, %v", cfg, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"sending disabled`) {
		t.Fatalf("no warning: %s", logs.String())
	}
	// AND the flag's state is logged even so (seed 000 R7.4)
	if !strings.Contains(logs.String(), `"msg":"rate limiter status","enabled":true`) {
		t.Fatalf("flag state not logged: %s", logs.String())
	}
}

func TestBuildWithoutCredentialsWarnsAndDisablesSending(t *testing.T) {
	// GIVEN queues configured but no AWS credentials (seed 000 R1.2)
	isolateAWS(t)
	s, _ := setup.Load(map[string]string{"INTAKE_QUEUE_URL": "u", "WORKFLOWS_QUEUE_URL": "u", "INTAKE_DLQ_URL": "u", "WORKFLOWS_DLQ_URL": "u", "FALLBACK_TABLE": "f", "IDEMPOTENCY_TABLE": "i"})
	var logs bytes.Buffer
	cfg, _, err := setup.Build(context.Background(), s, defaultAWS(t), slog.New(slog.NewJSONHandler(&logs, nil)), io.Discard)
	// THEN sending is disabled, a warning says why, and the flag is logged
	if err != nil || !strings.HasPrefix(cfg.Unavailable, "no AWS credentials") {
		t.Fatalf("Build = %q, %v", cfg.Unavailable, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"sending disabled: AWS is not configured; /send answers 503","reason":"no AWS credentials`) {
		t.Fatalf("no warning naming the missing credentials: %s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"rate limiter status"`) {
		t.Fatalf("flag state not logged: %s", logs.String())
	}
}

func TestBuildChecksQueueConnectivityAndLogsTheFlag(t *testing.T) {
	// GIVEN emulators and an environment pointing at them
	isolateAWS(t)
	f := harness.StartFauxqs(t)
	d := harness.StartDynalite(t)
	sys := f.CreateQueues(t, "dev")
	for _, tbl := range []struct{ name, key string }{{"fallback", fallback.KeyAttribute}, {"idem", idempotency.KeyAttribute}} {
		if err := emulator.CreateTable(context.Background(), d.DynamoDB, tbl.name, tbl.key); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_ENDPOINT_URL", f.Endpoint)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", d.Endpoint)
	s, err := setup.Load(map[string]string{
		"INTAKE_QUEUE_URL": sys.RateLimiter.URL, "INTAKE_DLQ_URL": sys.RateLimiter.DLQURL,
		"WORKFLOWS_QUEUE_URL": sys.Workflows.URL, "WORKFLOWS_DLQ_URL": sys.Workflows.DLQURL,
		"FALLBACK_TABLE": "fallback", "IDEMPOTENCY_TABLE": "idem", "RATE_LIMITER_ENABLED": "false",
		"AUTH_MODE": "jwt", "JWT_HMAC_SECRET": "local-secret-local-secret-local!!", "JWT_ISSUER": "https://issuer.test/", "JWT_AUDIENCE": "huntaze-api",
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	// WHEN the API is built
	cfg, deps, err := setup.Build(context.Background(), s, defaultAWS(t), slog.New(slog.NewJSONHandler(&logs, nil)), io.Discard)
	// THEN sending is available, the queue was reached and the flag logged
	if err != nil || cfg.Unavailable != "" || deps.Sender == nil {
		t.Fatalf("Build = %+v, %v", cfg, err)
	}
	for _, want := range []string{`"msg":"queue reachable"`, `"msg":"rate limiter status","enabled":false,"source":"environment"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
	if n, err := deps.Fallback.PendingCount(context.Background()); err != nil || n != 0 {
		t.Fatalf("fallback table through AWS_ENDPOINT_URL_DYNAMODB: %d, %v", n, err)
	}
}
