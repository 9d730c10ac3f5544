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

// WhileProgressing polls done every interval until it holds, and reports
// whether it did. It gives up when progress has returned the same value for
// stall, or limit has passed since the start: a slow but advancing run (a
// loaded machine) is waited for, a stuck one fails after stall, and every
// wait ends within limit. done and progress run at least once.
func WhileProgressing(stall, limit, every time.Duration, progress func() int, done func() bool) bool {
	start := time.Now()
	last, lastAt := progress(), start
	for {
		if done() {
			return true
		}
		now := time.Now()
		if n := progress(); n != last {
			last, lastAt = n, now
		}
		if now.Sub(lastAt) >= stall || now.Sub(start) >= limit {
			return false
		}
		time.Sleep(every)
	}
}
