// Package harness adapts devstack/emulator to tests: it starts the real
// services the tests talk to — redis-server, fauxqs (SQS + S3), dynalite
// (DynamoDB) — each on a free 127.0.0.1 port, fails the test with the
// emulator's error (which names the install command; nothing is skipped
// silently) and stops them when the test ends. Chromium is
// test/browserharness's, so tests without a browser do not link one.
package harness

import (
	"path/filepath"
	"time"

	"github.com/huntaze/message-pipeline/devstack/emulator"
)

// T is what the harness needs from a test: *testing.T and *testing.B.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}

// Buffer is a concurrency-safe buffer (process output, handler logs).
type Buffer = emulator.Buffer

// check fails the test on err.
func check(t T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// RepoRoot returns the directory holding go.mod.
func RepoRoot(t T) string {
	t.Helper()
	v, err := emulator.RepoRoot()
	check(t, err)
	return v
}

// Process is a child process stopped after the test; its output is logged
// if the test failed.
type Process struct {
	*emulator.Process
	t T
}

// StartCommand runs a program of ours (e.g. a built service binary) with
// extra environment, in its own process group, stopped after the test.
func StartCommand(t T, name string, env []string, argv ...string) *Process {
	t.Helper()
	p, err := emulator.StartProcess(name, nil, env, argv...)
	check(t, err)
	return supervise(t, p)
}

func supervise(t T, p *emulator.Process) *Process {
	t.Cleanup(func() {
		_ = p.Close()
		if t.Failed() {
			t.Logf("harness: %s output:\n%s", p.Name, p.Output())
		}
	})
	return &Process{Process: p, t: t}
}

// Wait waits for the process to exit and returns its exit code (-1 if a
// signal killed it), failing the test after timeout.
func (p *Process) Wait(t T, timeout time.Duration) int {
	t.Helper()
	code, err := p.Process.Wait(timeout)
	if err != nil {
		t.Fatalf("harness: %v\n%s", err, p.Output())
	}
	return code
}

// Stop stops the process (SIGTERM to its group, then SIGKILL).
func (p *Process) Stop() { _ = p.Close() }

// DriverDir is where `make deps` unpacks the Playwright driver (npm
// playwright-core@1.57.0 as package/, plus a node symlink). Starting a
// browser is test/browserharness's.
func DriverDir(t T) string {
	return filepath.Join(RepoRoot(t), ".cache", "playwright-driver")
}
