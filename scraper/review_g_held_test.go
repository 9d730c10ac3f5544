// Issue 22, seventh review (fresh reviewer G): attacks that held.

package scraper_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/test/wait"
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
	// The origin commits 10 s after the request, or later, once the
	// consumer asked for its second early release, but within 13 s (the
	// horizon is 15 s): on a loaded machine (make test, load 20 on 2
	// cores) a receive and its read-back took so long that only one early
	// redelivery came before a fixed 10 s commit.
	commitAt := func() {
		time.Sleep(10 * time.Second)
		wait.Until(3*time.Second, 50*time.Millisecond, func() bool { return len(f.compressed.Asked()) >= 2 })
	}
	f.behind(cfg, firstSendCommitsLateWhen(commitAt, &late, func(w http.ResponseWriter) { http.Error(w, "origin timed out", 500) }))
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

// lockstepThenHealed serves the chat page loads (any fan's, the probe
// chat's too) in lockstep with a receive of chatFault (the fan's chat 500,
// the probe chat good, the fan's chat 500) for the first triples receives,
// then as the origin does: a page tier whose broken backend is taken out
// before the patience ran out.
func lockstepThenHealed(triples int64, loads *atomic.Int64) func(http.Handler) http.Handler {
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				if n := loads.Add(1); n <= 3*triples && n%3 != 2 {
					http.Error(w, "backend error", http.StatusInternalServerError)
					return
				}
			}
			origin.ServeHTTP(w, r)
		})
	}
}

// TestRev22GHeldALockstepShorterThanThePatienceThenHealedCountsNothing:
//
// Promise (c), attack on CHAT_FAULT_PATIENCE: two receives in lockstep
// with the probe (the fan's chat bad, the probe good, the fan's chat bad),
// well inside the 3 s patience, then the tier heals. Held: both receives
// wait uncounted, the next one sends, once.
func TestRev22GHeldALockstepShorterThanThePatienceThenHealedCountsNothing(t *testing.T) {
	t.Parallel()
	// GIVEN a page tier in lockstep for 2 receives, and one message
	cfg := testConfig()
	cfg.ChatFaultPatience = 20 * time.Second // a loaded machine's 2 receives stay well inside it
	f := setup(t, cfg)
	var loads atomic.Int64
	f.behind(cfg, lockstepThenHealed(2, &loads))
	f.compress()
	f.enqueue(f.newMessage("creator-a", "after a short lockstep"))
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN it was delivered once and nothing was counted
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t, the fan has %q", ok, got)
	}
	if n := strings.Count(f.logs.String(), `"error_class":"chat_unusable"`); n != 0 {
		t.Fatalf("a lockstep shorter than the patience counted %d chat_unusable failure(s)", n)
	}
	if !strings.Contains(f.logs.String(), "before it counts as this fan's chat alone") {
		t.Fatalf("the attack did not happen (no receive saw the lockstep): %d chat page loads", loads.Load())
	}
}
