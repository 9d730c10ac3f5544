// Issue 22 review D, finding 4 (fixed: limiter.lua and restamp.lua keep the
// log until its newest entry, a held one too, is a span old): the gate
// approval held until an unanswered send can no longer land.

package scraper_test

import (
	"context"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/test/harness"
)

// TestRev22DDAHeldApprovalIsForgottenWhenTheCreatorsNextApprovalResetsTheLogsTTL:
//
// Promise (b): the site never records more than the limit per creator per
// window; an unanswered send's approval counts until one span after the
// last moment it may land (docs/scraper.md, LATE_COMMIT_HORIZON:
// "counts in every window until one span after").
//
// Fault: none beyond time. The gate calls the scraper makes (real
// redis-server): creator-a's send a0 gets no answer and is held
// (Limiter.Hold, later = the horizon); a0 then leaves its FIFO group
// before the horizon (dead-lettered with its reason: a read-back that
// cannot tell, outcome_unknown after MaxFailures, or a chat answering a
// 4xx), so the creator's a1 is admitted and restamped. The creator then
// sends nothing for a little over one span.
//
// Sequence: Hold sets the log's PEXPIRE to span + later, but a1's approval
// (limiter.lua) and its Restamp (restamp.lua) set it back to span + 1 s
// from then: the whole log, the held approval in it, expires while a0 may
// still land. The creator's next two messages are then both admitted at
// once (limit 2), and a0 landing beside them is the third in a window.
func TestRev22DDAHeldApprovalIsForgottenWhenTheCreatorsNextApprovalResetsTheLogsTTL(t *testing.T) {
	// GIVEN a gate of 2 per 1 s (span 1 s) on a real Redis and a horizon
	// of 6 s
	ctx := context.Background()
	rdb := harness.StartRedis(t).Client()
	cfg := ratelimit.Config{Limit: 2, Window: time.Second, KeyPrefix: "gate"}
	harness.PrimeFence(t, rdb, cfg.FenceKey())
	gate, err := ratelimit.New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const horizon = 6 * time.Second
	admit := func(id string) bool {
		t.Helper()
		ds, err := gate.Decide(ctx, []ratelimit.Request{{Key: "creator-a", ID: id}})
		if err != nil {
			t.Fatal(err)
		}
		return ds[0].Allowed
	}
	// AND a0 admitted, unanswered and held until the horizon (may land
	// until then)
	heldAt := time.Now()
	if !admit("a0") {
		t.Fatal("a0 not admitted")
	}
	if found, err := gate.Hold(ctx, "creator-a", "a0", horizon); err != nil || !found {
		t.Fatalf("hold: %t, %v", found, err)
	}
	// AND a0 dead-lettered before its horizon, so a1 is admitted and its
	// send answered (restamped)
	if !admit("a1") {
		t.Fatal("a1 not admitted beside one held approval (limit 2)")
	}
	if _, err := gate.Restamp(ctx, "creator-a", "a1"); err != nil {
		t.Fatal(err)
	}
	// WHEN the creator sends nothing for a little over one span + 1 s
	time.Sleep(cfg.Span() + 1500*time.Millisecond)
	if time.Since(heldAt) >= horizon {
		t.Skip("the machine was too slow: the horizon passed already")
	}
	// THEN a0's approval still counts (it may land until the horizon): of
	// the creator's next two messages only one is admitted
	a2, a3 := admit("a2"), admit("a3")
	if a2 && a3 {
		n, _ := rdb.ZCard(ctx, cfg.LogKey("creator-a")).Result()
		t.Fatalf("a2 and a3 both admitted %s after a0 was held until %s: the held approval is gone (the log holds %d entries); a0 landing now is a third send in one window (limit 2)",
			time.Since(heldAt).Round(100*time.Millisecond), horizon, n)
	}
}
