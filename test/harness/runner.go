package harness

import (
	"fmt"
	"os"
)

// Runner is a T for the developer programs under test/cmd (make bench,
// the TypeScript client's API server): a failure prints, stops everything
// started so far, and exits 1.
type Runner struct {
	cleanups []func()
	failed   bool
}

// Helper implements harness.T.
func (r *Runner) Helper() {}

// Logf implements harness.T.
func (r *Runner) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// Cleanup implements harness.T.
func (r *Runner) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// Failed implements harness.T.
func (r *Runner) Failed() bool { return r.failed }

// Fatalf implements harness.T.
func (r *Runner) Fatalf(format string, args ...any) {
	r.failed = true
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
	r.Stop()
	os.Exit(1)
}

// Stop runs the cleanups, last registered first.
func (r *Runner) Stop() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}
