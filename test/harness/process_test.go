package harness

import (
	"fmt"
	"strings"
	"testing"
)

// recordingTB captures Fatalf instead of stopping the test, so the failure
// message itself can be checked.
type recordingTB struct {
	testing.TB
	fatal string
}

func (r *recordingTB) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recordingTB) Helper()                           {}

func TestLookBinary_MissingBinaryFailsWithInstallCommand(t *testing.T) {
	// GIVEN a binary that is on neither PATH nor a fallback path
	rec := &recordingTB{TB: t}
	t.Setenv("PATH", t.TempDir())

	// WHEN the harness looks it up
	LookBinary(rec, "redis-server", InstallApt, "/nonexistent/redis-server")

	// THEN the test fails, naming the binary and the install command
	if !strings.Contains(rec.fatal, "redis-server not found") || !strings.Contains(rec.fatal, "apt-get install -y redis-server chromium") {
		t.Fatalf("failure message = %q", rec.fatal)
	}
}

func TestLookBinary_FindsFallback(t *testing.T) {
	rec := &recordingTB{TB: t}
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	if got := LookBinary(rec, "sh", InstallApt, dir+"/nope", "/bin/sh"); got != "/bin/sh" || rec.fatal != "" {
		t.Fatalf("LookBinary = %q, fatal %q", got, rec.fatal)
	}
}
