package featureflag

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// fakeSource is a parameter whose value, presence and failure the test sets.
type fakeSource struct {
	value string
	found bool
	err   error
	reads int
}

func (f *fakeSource) Get(context.Context) (string, bool, error) {
	f.reads++
	return f.value, f.found, f.err
}

func TestFlagCachesForTTLAndFallsBack(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	src := &fakeSource{value: "false", found: true}
	f := New(src, true, 30*time.Second, clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()

	// The parameter wins over the environment default.
	if v, origin := f.Enabled(ctx); v || origin != "parameter" {
		t.Fatalf("first read = %t from %s", v, origin)
	}
	// Within the TTL the parameter is not read again.
	src.value = "true"
	now = now.Add(29 * time.Second)
	if v, _ := f.Enabled(ctx); v || src.reads != 1 {
		t.Fatalf("within TTL = %t after %d reads", v, src.reads)
	}
	// After it, the flip is seen.
	now = now.Add(2 * time.Second)
	if v, _ := f.Enabled(ctx); !v {
		t.Fatal("flip not seen after the TTL")
	}
	// A failing parameter keeps the last known value.
	src.value, src.err = "false", errors.New("throttled")
	now = now.Add(time.Minute)
	if v, origin := f.Enabled(ctx); !v || origin != "last known" {
		t.Fatalf("on error = %t from %s", v, origin)
	}
	// An absent parameter means the environment default.
	src.err, src.found = nil, false
	now = now.Add(time.Minute)
	if v, origin := f.Enabled(ctx); !v || origin != "environment" {
		t.Fatalf("absent = %t from %s", v, origin)
	}
	// A value that is not a boolean is ignored.
	src.value, src.found = "maybe", true
	now = now.Add(time.Minute)
	if v, origin := f.Enabled(ctx); !v || origin != "environment" {
		t.Fatalf("invalid = %t from %s", v, origin)
	}
}

func TestParseEnv(t *testing.T) {
	for in, want := range map[string]bool{"": true, "true": true, "FALSE": false, "0": false, "on": true} {
		if got, err := ParseEnv(in); err != nil || got != want {
			t.Errorf("ParseEnv(%q) = %t, %v", in, got, err)
		}
	}
	if _, err := ParseEnv("sometimes"); err == nil {
		t.Error("ParseEnv accepted a non-boolean")
	}
}
