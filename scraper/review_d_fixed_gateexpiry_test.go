// Issue 22 review D, finding 4 (fixed: limiter.lua and restamp.lua keep the
// log until its newest entry, a held one too, is a span old): the gate
// approval held until an unanswered send can no longer land.

package scraper_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
	t.Parallel()
	// GIVEN a gate of 2 per 1 s (span 1 s) on a real Redis and a horizon
	// of 30 s (far beyond the test's 2.5 s wait: a loaded machine cannot
	// outlast it; Redis TIME brackets it below)
	ctx := context.Background()
	rdb := harness.StartRedis(t).Client()
	cfg := ratelimit.Config{Limit: 2, Window: time.Second, KeyPrefix: "gate"}
	harness.PrimeFence(t, rdb, cfg.FenceKey())
	gate, err := ratelimit.New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const horizon = 30 * time.Second
	approvals := map[string]string{}
	admit := func(id string) bool {
		t.Helper()
		ds, err := gate.Decide(ctx, []ratelimit.Request{{Key: "creator-a", ID: id}})
		if err != nil {
			t.Fatal(err)
		}
		approvals[id] = ds[0].Approval
		return ds[0].Allowed
	}
	// AND a0 admitted, unanswered and held until the horizon (may land
	// until then)
	heldAt := redisNow(t, rdb)
	if !admit("a0") {
		t.Fatal("a0 not admitted")
	}
	if found, err := gate.Hold(ctx, "creator-a", approvals["a0"], horizon); err != nil || !found {
		t.Fatalf("hold: %t, %v", found, err)
	}
	// AND a0 dead-lettered before its horizon, so a1 is admitted and its
	// send answered (restamped)
	if !admit("a1") {
		t.Fatal("a1 not admitted beside one held approval (limit 2)")
	}
	if _, err := gate.Restamp(ctx, "creator-a", approvals["a1"]); err != nil {
		t.Fatal(err)
	}
	// WHEN the creator sends nothing for a little over one span + 1 s
	time.Sleep(cfg.Span() + 1500*time.Millisecond)
	// THEN a0's approval still counts (it may land until the horizon): of
	// the creator's next two messages only one is admitted
	a2, a3 := admit("a2"), admit("a3")
	// (Both decisions came before the horizon by Redis's own clock, the
	// one the gate decides by: held at heldAt or later, until heldAt +
	// horizon at least.)
	if decided := redisNow(t, rdb); decided.Sub(heldAt) >= horizon {
		t.Fatalf("the decisions came %s after the hold, past the %s horizon: the test proves nothing", decided.Sub(heldAt), horizon)
	}
	if a2 && a3 {
		n, _ := rdb.ZCard(ctx, cfg.LogKey("creator-a")).Result()
		t.Fatalf("a2 and a3 both admitted %s after a0 was held until %s: the held approval is gone (the log holds %d entries); a0 landing now is a third send in one window (limit 2)",
			redisNow(t, rdb).Sub(heldAt).Round(100*time.Millisecond), horizon, n)
	}
}

// redisNow is the Redis server's time (TIME), the clock the gate decides by.
func redisNow(t *testing.T, rdb *redis.Client) time.Time {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}
