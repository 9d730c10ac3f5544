package scraper_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/test/harness"
)

// Issue 22, tenth review (fresh reviewer J): the send gate with two tasks
// holding one message (the same gate id).

// TestRev22JCAnEarlierTasksLateRestampMovesTheLaterTasksHeldApproval:
//
// Promise (b): OnlyFans never sees more than the limit of sends per
// creator in any rolling window; the gate is charged for every send
// request the site may have accepted, for as long as it may land.
//
// Fault: task A clicks message m and stalls before its send ends (a
// process frozen longer than LATE_COMMIT_HORIZON: the claim and the
// visibility lapse). Task B receives m, reads it back not sent after A's
// horizon, is admitted under the same gate id (the message id) and
// clicks; the site hangs, so B holds its approval to B's click + horizon
// (Processor.hold). Then A wakes and its send ends (answered):
// Processor.restamp moves "the newest approval of id" to now, which is
// B's held approval, not A's. B's request may still land until its click
// + horizon, but the log no longer charges it there: the gate admits the
// creator's next message one span after A's restamp, within one window of
// B's late landing. With a limit of 1 the site sees 2 sends in a window.
// (The same happens when A's end is a Hold: it moves B's approval to A's
// click + horizon, earlier than B's.)
//
// Code path: internal/ratelimit/restamp.lua (Limiter.Restamp and
// Limiter.Hold) picks the member of the id with the highest score; the
// scraper (processor_send.go attempt: restamp / hold) passes only the
// message id, the same for every task and attempt, so an end call cannot
// name its own approval.
//
// Precondition: a task stalled between its click and its end call longer
// than the horizon (5 min in production) while another task took the
// message. Rare, but it is the two-tasks-on-one-id case the gate's
// ChargeAhead was meant to make safe.
//
// Fixed: Decide returns the approval each request spent
// (Decision.Approval) and Restamp/Hold move exactly that one; A's
// approval was pruned before B's was made, so A's late call moves
// nothing. Suggested then: make each approval's member name its attempt (Decide
// returns the member, e.g. id@time#n, or takes a per-click token) and
// have Restamp/Hold move exactly that member; or never move an approval
// earlier than its current score in Restamp/Hold when it is not the
// caller's (a ZADD GT), so an end call can only over-charge.
func TestRev22JCAnEarlierTasksLateRestampMovesTheLaterTasksHeldApproval(t *testing.T) {
	t.Parallel()
	for name, aWakes := range map[string]bool{"A restamps after B's hold": true, "control (A's end call lost)": false} {
		t.Run(name, func(t *testing.T) { t.Parallel(); twoTasksOnOneID(t, aWakes) })
	}
}

// twoTasksOnOneID is the scenario of
// TestRev22JCAnEarlierTasksLateRestampMovesTheLaterTasksHeldApproval;
// aWakes false: A never makes its end call (the control).
func twoTasksOnOneID(t *testing.T, aWakes bool) {
	// GIVEN a gate of 1 send per 1 s, a horizon of 1.5 s (charged ahead
	// and the furthest hold), on a real redis-server
	const horizon = 1500 * time.Millisecond
	r := harness.StartRedis(t)
	cfg := ratelimit.Config{Limit: 1, Window: time.Second, KeyPrefix: "gate", MaxHold: horizon, ChargeAhead: horizon}
	harness.PrimeFence(t, r.Client(), cfg.FenceKey())
	gate, err := ratelimit.New(r.Client(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// admitted returns the approval an admitted request spent ("" when
	// denied): each task keeps its own, as Processor.admit does.
	admitted := func(id string) string {
		ds, err := gate.Decide(ctx, []ratelimit.Request{{Key: "creator-a", ID: id}})
		if err != nil {
			t.Fatal(err)
		}
		return ds[0].Approval
	}
	waitAdmitted := func(id string, limit time.Duration) (time.Time, string) {
		for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if a := admitted(id); a != "" {
				return time.Now(), a
			}
		}
		t.Fatalf("%s never admitted", id)
		return time.Time{}, ""
	}
	// WHEN task A is admitted for m and clicks, then stalls
	approvalA := admitted("m")
	if approvalA == "" {
		t.Fatal("A not admitted")
	}
	// task B, after A's horizon, is admitted for m (as soon as the gate
	// lets it), clicks, and gets no answer: its approval held to its
	// click + horizon
	clickB, approvalB := waitAdmitted("m", 10*time.Second)
	if _, err := gate.Hold(ctx, "creator-a", approvalB, time.Until(clickB.Add(horizon))); err != nil {
		t.Fatal(err)
	}
	bMayLand := clickB.Add(horizon)
	// task A wakes: its send ended (answered): restamped
	time.Sleep(100 * time.Millisecond)
	if aWakes {
		if _, err := gate.Restamp(ctx, "creator-a", approvalA); err != nil {
			t.Fatal(err)
		}
	}
	// the creator's next message n asks the gate until admitted
	clickN, _ := waitAdmitted("n", 10*time.Second)
	// THEN n is not admitted within one window of a moment B's send may
	// still land at (limit 1): B may land at any moment up to bMayLand,
	// so n must wait until bMayLand + the window
	if clickN.Before(bMayLand.Add(cfg.Window)) {
		entries, _ := r.Client().ZRangeWithScores(ctx, cfg.LogKey("creator-a"), 0, -1).Result()
		var at []string
		for _, z := range entries {
			at = append(at, z.Member.(string)+"@"+time.UnixMicro(int64(z.Score)).Format("15:04:05.000"))
		}
		sort.Strings(at)
		t.Fatalf("n admitted at %s, %s before B's send can no longer land (%s): with B landing late, 2 sends in one %s window (limit 1); the log: %v",
			clickN.Format("15:04:05.000"), bMayLand.Add(cfg.Window).Sub(clickN).Round(time.Millisecond), bMayLand.Format("15:04:05.000"), cfg.Window, at)
	}
}
