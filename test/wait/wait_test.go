package wait

import (
	"testing"
	"time"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	// GIVEN a condition that holds from its third check
	checks := 0
	cond := func() bool { checks++; return checks >= 3 }
	// WHEN waited for with room to spare
	ok := Until(time.Minute, time.Millisecond, cond)
	// THEN it held, after exactly three checks
	if !ok || checks != 3 {
		t.Fatalf("Until = %t after %d checks, want true after 3", ok, checks)
	}
}

func TestUntilGivesUpAfterTheTimeoutHavingCheckedAtLeastOnce(t *testing.T) {
	// GIVEN a condition that never holds
	checks := 0
	cond := func() bool { checks++; return false }
	// WHEN waited for with no time at all
	ok := Until(0, time.Millisecond, cond)
	// THEN it reports false, having checked once
	if ok || checks != 1 {
		t.Fatalf("Until = %t after %d checks, want false after 1", ok, checks)
	}
}

func TestWhileProgressingWaitsPastTheStallWhileTheCountMoves(t *testing.T) {
	// GIVEN a count that moves on every check and is done at its 50th, each
	// check 1 ms apart: the whole run is longer than the 20 ms stall
	n := 0
	progress := func() int { n++; return n }
	done := func() bool { return n >= 50 }
	// WHEN waited for
	ok := WhileProgressing(20*time.Millisecond, time.Minute, time.Millisecond, progress, done)
	// THEN it held
	if !ok {
		t.Fatalf("WhileProgressing gave up at count %d, want it to wait while the count moves", n)
	}
}

func TestWhileProgressingGivesUpOnceTheCountStalls(t *testing.T) {
	// GIVEN a count that stops moving at 3 and a condition that never holds
	n := 0
	progress := func() int { n = min(n+1, 3); return n }
	// WHEN waited for with a short stall and a long limit
	ok := WhileProgressing(20*time.Millisecond, time.Minute, time.Millisecond, progress, func() bool { return false })
	// THEN it gives up
	if ok {
		t.Fatal("WhileProgressing = true for a condition that never holds")
	}
}

func TestWhileProgressingGivesUpAtTheLimitEvenWhileTheCountMoves(t *testing.T) {
	// GIVEN a count that always moves and a condition that never holds
	n := 0
	progress := func() int { n++; return n }
	// WHEN waited for with a stall longer than the limit
	ok := WhileProgressing(time.Minute, 20*time.Millisecond, time.Millisecond, progress, func() bool { return false })
	// THEN it gives up at the limit
	if ok {
		t.Fatal("WhileProgressing = true for a condition that never holds")
	}
}
