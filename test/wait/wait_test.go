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
