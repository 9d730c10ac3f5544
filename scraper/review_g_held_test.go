// Issue 22, seventh review (fresh reviewer G): attacks that held.

package scraper_test

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestRev22GHeldA500WhoseOriginCommitsLateIsSentOnceWhenVisibilityExpiresEarly:
//
// Promise (a), attack: the release that waits out the late-commit horizon
// (mayStillLand) is ignored: every visibility the consumer asks for is
// applied as 0 (a visibility that expires early, redeliveries at once),
// while the origin of a send answered 500 commits it 10 s later (inside the
// 15 s horizon). Held: every redelivery reads back against the attempt
// mark's click time (recover: mayLandFor of the mark), not against the
// release's delay, so nothing is clicked before the horizon and the late
// commit is found.
func TestRev22GHeldA500WhoseOriginCommitsLateIsSentOnceWhenVisibilityExpiresEarly(t *testing.T) {
	t.Parallel()
	// GIVEN a front answering the first send 500 while its origin records
	// it 10 s later, and a queue whose visibilities all expire at once
	cfg := testConfig()
	f := setup(t, cfg)
	var late atomic.Int64
	f.behind(cfg, firstSendAnswersThenCommitsLate(500, 10*time.Second, &late))
	f.compress()
	f.enqueue(f.newMessage("creator-a", "redelivered before the horizon"))
	// WHEN the scraper runs until the queue is empty and the commit landed
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 && late.Load() == 1 })
	// THEN the fan has it once, after several early redeliveries
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t, the fan has %d copies %q after %d receives", ok, len(got), got, len(f.compressed.Asked()))
	}
	if n := len(f.compressed.Asked()); n < 2 {
		t.Fatalf("the attack did not happen: %d early redeliveries", n)
	}
}
