package emulator_test

import (
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/devstack/emulator"
)

func TestLookBinary_MissingBinaryFailsWithInstallCommand(t *testing.T) {
	// GIVEN a binary that is on neither PATH nor a fallback path
	t.Setenv("PATH", t.TempDir())
	// WHEN it is looked up
	_, err := emulator.LookBinary("redis-server", emulator.InstallApt, "/nonexistent/redis-server")
	// THEN the error names the binary and the install command
	if err == nil || !strings.Contains(err.Error(), "redis-server not found") || !strings.Contains(err.Error(), "apt-get install -y redis-server chromium") {
		t.Fatalf("error = %v", err)
	}
}

func TestLookBinary_FindsFallback(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if got, err := emulator.LookBinary("sh", emulator.InstallApt, t.TempDir()+"/nope", "/bin/sh"); got != "/bin/sh" || err != nil {
		t.Fatalf("LookBinary = %q, %v", got, err)
	}
}
