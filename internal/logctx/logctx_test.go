package logctx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/internal/logctx"
)

func TestEveryLineLoggedWithTheContextCarriesItsAttributes(t *testing.T) {
	// GIVEN a wrapped JSON logger and a context carrying a correlation id
	var buf bytes.Buffer
	log := logctx.Logger(slog.New(slog.NewJSONHandler(&buf, nil))).With("service", "api")
	ctx := logctx.With(context.Background(), "correlation_id", "c-1")
	ctx = logctx.With(ctx, slog.String("message_id", "m-1"))

	// WHEN lines are logged with it, and one without it
	log.InfoContext(ctx, "first", "k", 1)
	log.Log(ctx, slog.LevelWarn, "second")
	log.Info("no context")

	// THEN the first two carry the attributes, the third does not
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		has := rec["correlation_id"] == "c-1" && rec["message_id"] == "m-1" && rec["service"] == "api"
		if has != (i < 2) {
			t.Errorf("line %d: %s", i, l)
		}
	}
	// AND wrapping twice adds them once
	buf.Reset()
	logctx.Logger(log).InfoContext(ctx, "once")
	if strings.Count(buf.String(), "correlation_id") != 1 {
		t.Fatalf("wrapped twice: %s", buf.String())
	}
}
