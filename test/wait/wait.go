// Package wait is the tests' one way to wait for something to happen:
// poll a condition at an interval, bounded by a timeout. It links nothing
// but the standard library, so any package's tests can use it.
package wait

import (
	"testing"
	"time"
)

// Until polls cond every interval, from at once, until it holds or timeout
// has passed, and reports whether it held. cond runs at least once.
func Until(timeout, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(every)
	}
}

// For is Until that fails the test, naming what it waited for, when cond
// did not hold within timeout.
func For(t testing.TB, timeout, every time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, every, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}
