package ratelimit_test

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/test/harness"
)

func newLimiter(t testing.TB, rdb redis.Cmdable, limit int, window time.Duration) *ratelimit.Limiter {
	t.Helper()
	return newLimiterMargin(t, rdb, limit, window, 0)
}

// newLimiterMargin returns a limiter whose Redis already carries an old
// fence, so the test does not start with the one-window hold of a fresh
// Redis (tested on its own).
func newLimiterMargin(t testing.TB, rdb redis.Cmdable, limit int, window, margin time.Duration) *ratelimit.Limiter {
	t.Helper()
	cfg := ratelimit.Config{Limit: limit, Window: window, Margin: margin, KeyPrefix: "test"}
	l, err := ratelimit.New(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	harness.PrimeFence(t, rdb, cfg.FenceKey())
	return l
}

func decideOne(t testing.TB, l *ratelimit.Limiter, key, id string) ratelimit.Decision {
	t.Helper()
	d, err := l.Decide(context.Background(), []ratelimit.Request{{Key: key, ID: id}})
	if err != nil {
		t.Fatalf("Decide: %v", err)
	}
	return d[0]
}

// assertRollingWindow fails if any rolling window of length w holds more
// than limit of the given approval times.
func assertRollingWindow(t testing.TB, key string, times []time.Time, limit int, w time.Duration) {
	t.Helper()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := range times {
		// times[i..j] all within [times[i], times[i]+w)
		j := i
		for j+1 < len(times) && times[j+1].Sub(times[i]) < w {
			j++
		}
		if n := j - i + 1; n > limit {
			t.Fatalf("creator %s: %d approvals in the window starting %s (limit %d)", key, n, times[i].Format("15:04:05.000000"), limit)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := ratelimit.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	err := ratelimit.Config{Limit: 0, Window: 0, Margin: -1}.Validate()
	for _, want := range []string{"limit must be at least 1", "window must be at least 1ms", "margin must not be negative", "key prefix is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestDecide_AllowsLimitThenDeniesUntilTheFirstApprovalLeavesTheWindow(t *testing.T) {
	// GIVEN a limiter of 3 per 500 ms
	r := harness.StartRedis(t)
	l := newLimiter(t, r.Client(), 3, 500*time.Millisecond)

	// WHEN 4 messages of one creator arrive at once
	var ds []ratelimit.Decision
	for i := range 4 {
		ds = append(ds, decideOne(t, l, "creator-a", fmt.Sprint("m", i)))
	}

	// THEN 3 are allowed with decreasing remaining tokens, the 4th is denied
	// with a retry pointing at the end of the first approval's window
	for i, want := range []int{2, 1, 0} {
		if !ds[i].Allowed || ds[i].Remaining != want || ds[i].RetryAfter != 0 {
			t.Fatalf("decision %d = %+v, want allowed with %d remaining", i, ds[i], want)
		}
	}
	denied := ds[3]
	room := ds[0].At.Add(500 * time.Millisecond)
	if denied.Allowed || denied.RetryAfter != room.Sub(denied.At) {
		t.Fatalf("4th = %+v, want denied until %s", denied, room)
	}
	// AND another creator is not affected
	if d := decideOne(t, l, "creator-b", "b0"); !d.Allowed {
		t.Fatalf("other creator denied: %+v", d)
	}
	// WHEN it comes back when the window has room
	time.Sleep(time.Until(room) + 5*time.Millisecond)
	// THEN it is allowed
	if d := decideOne(t, l, "creator-a", "m3"); !d.Allowed {
		t.Fatalf("after RetryAfter: %+v, want allowed", d)
	}
}

func TestDecide_AfterADenialEveryLaterRequestOfThatCreatorWaitsAsLong(t *testing.T) {
	// GIVEN a window of 2 with one approval spent
	r := harness.StartRedis(t)
	l := newLimiter(t, r.Client(), 2, time.Second)
	decideOne(t, l, "a", "a0")

	// WHEN a batch holds a's next 3 messages interleaved with b's
	ds, err := l.Decide(context.Background(), []ratelimit.Request{
		{Key: "a", ID: "a1"}, {Key: "b", ID: "b1"}, {Key: "a", ID: "a2"}, {Key: "a", ID: "a3"}, {Key: "b", ID: "b2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// THEN a1 passes, a2 is the first denied, a3 is denied with the same
	// retry (it must not come back before a2), and b is unaffected
	if !ds[0].Allowed || ds[2].Allowed || ds[3].Allowed || !ds[1].Allowed || !ds[4].Allowed {
		t.Fatalf("decisions %+v", ds)
	}
	if ds[2].RetryAfter <= 0 || ds[3].RetryAfter != ds[2].RetryAfter {
		t.Fatalf("retries a2 %s a3 %s, want equal and positive", ds[2].RetryAfter, ds[3].RetryAfter)
	}
}

func TestDecide_MarginWidensTheCountedWindow(t *testing.T) {
	// GIVEN 2 per 200 ms with a 300 ms margin
	r := harness.StartRedis(t)
	l := newLimiterMargin(t, r.Client(), 2, 200*time.Millisecond, 300*time.Millisecond)
	first := decideOne(t, l, "c", "1")
	decideOne(t, l, "c", "2")
	// WHEN the third asks after the plain window has passed
	time.Sleep(250 * time.Millisecond)
	d := decideOne(t, l, "c", "3")
	// THEN it is still denied, until window + margin after the first
	if d.Allowed || d.RetryAfter != first.At.Add(500*time.Millisecond).Sub(d.At) {
		t.Fatalf("third = %+v, want denied until first + 500ms", d)
	}
}

func TestDecide_AFreshOrEmptiedRedisHoldsEveryoneForOneWindow(t *testing.T) {
	// GIVEN 10 per 400 ms on a Redis never seen before
	r := harness.StartRedis(t)
	c := r.Client()
	const limit, window = 10, 400 * time.Millisecond
	l, err := ratelimit.New(c, ratelimit.Config{Limit: limit, Window: window, KeyPrefix: "fence"})
	if err != nil {
		t.Fatal(err)
	}
	// THEN the first decision is held for one window, fenced
	first := decideOne(t, l, "c", "x")
	if first.Allowed || !first.Fenced || first.RetryAfter != window {
		t.Fatalf("first decision on a fresh Redis = %+v, want fenced for %s", first, window)
	}

	// WHEN a creator has had its 10th send and Redis is emptied right then
	time.Sleep(first.RetryAfter + 5*time.Millisecond)
	var approvals []time.Time
	for i := range limit {
		d := decideOne(t, l, "c", fmt.Sprint("m", i))
		if !d.Allowed {
			t.Fatalf("send %d denied: %+v", i, d)
		}
		approvals = append(approvals, d.At)
	}
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// THEN nothing passes until a full window after the loss, and the sends
	// on both sides of the loss keep every rolling window at the limit
	deadline := time.Now().Add(5 * window)
	for i := 0; time.Now().Before(deadline); i++ {
		d := decideOne(t, l, "c", fmt.Sprint("after", i))
		if d.Allowed {
			approvals = append(approvals, d.At)
		} else if i == 0 && !d.Fenced {
			t.Fatalf("first decision after the loss = %+v, want fenced", d)
		}
		time.Sleep(window / 40)
	}
	assertRollingWindow(t, "c", approvals, limit, window)
	if len(approvals) < 2*limit {
		t.Fatalf("only %d approvals over 5 windows: the fence never lifted", len(approvals))
	}
}

func TestDecide_ARedisThatKeptTheFenceButLostTheLatestApprovalsIsFenced(t *testing.T) {
	// GIVEN 3 per 2 s on a Redis whose snapshot holds the fence and no
	// approval (a snapshot taken before the creator's sends)
	r := harness.StartRedis(t)
	c := r.Client()
	const limit, window = 3, 2 * time.Second
	l := newLimiter(t, c, limit, window)
	decideOne(t, l, "other", "warm-up") // the fence now names this server
	ctx := context.Background()
	if err := c.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// AND the creator's 3 sends right after it
	for i := range limit {
		if d := decideOne(t, l, "c", fmt.Sprint("m", i)); !d.Allowed {
			t.Fatalf("send %d denied: %+v", i, d)
		}
	}
	// WHEN Redis comes back from that snapshot (a restart from an older
	// RDB, a failover to a replica behind on replication): the fence is
	// there, the 3 approvals are not
	r.RestartFromSnapshot()
	if n, err := c.Exists(ctx, l.Config().FenceKey()).Result(); err != nil || n != 1 {
		t.Fatalf("fence after the restart: exists=%d err=%v, want kept", n, err)
	}
	// THEN the next send is fenced for a span, not a 4th in the window
	d := decideOne(t, l, "c", "m3")
	if d.Allowed || !d.Fenced || d.RetryAfter != window {
		t.Fatalf("first decision after a partial loss = %+v, want fenced for %s", d, window)
	}
}

func TestDecide_AnApprovalChargedAheadCountsUntilItsSendEnds(t *testing.T) {
	// GIVEN 1 per 200 ms, each approval charged 2 s ahead (the send gate:
	// a send may land that late until its end is known)
	r := harness.StartRedis(t)
	c := r.Client()
	cfg := ratelimit.Config{Limit: 1, Window: 200 * time.Millisecond, KeyPrefix: "ahead", MaxHold: 2 * time.Second, ChargeAhead: 2 * time.Second}
	l, err := ratelimit.New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	harness.PrimeFence(t, c, cfg.FenceKey())
	first := decideOne(t, l, "c", "a")
	if !first.Allowed {
		t.Fatalf("first send denied: %+v", first)
	}
	// WHEN a window passes and the send's end was never recorded (its
	// Restamp or Hold lost)
	time.Sleep(cfg.Window + 50*time.Millisecond)
	// THEN the creator's next send still waits for it
	if d := decideOne(t, l, "c", "b"); d.Allowed || d.RetryAfter < cfg.Window {
		t.Fatalf("next send after a lost end: %+v, want denied until the charge ahead passes", d)
	}
	// WHEN the send's end is recorded (Restamp: answered now)
	if moved, err := l.Restamp(context.Background(), "c", first.Approval); err != nil || !moved {
		t.Fatalf("restamp: moved %t, %v", moved, err)
	}
	// THEN one window after it the next send goes
	time.Sleep(cfg.Window + 50*time.Millisecond)
	if d := decideOne(t, l, "c", "b"); !d.Allowed {
		t.Fatalf("next send a window after the first one's end: %+v", d)
	}
}

func TestConfig_ChargeAheadMustLieWithinTheMaxHold(t *testing.T) {
	c := ratelimit.Config{Limit: 1, Window: time.Second, KeyPrefix: "x", MaxHold: time.Second, ChargeAhead: 2 * time.Second}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "charge ahead") {
		t.Fatalf("Validate() = %v, want the charge ahead refused", err)
	}
}

func TestDecide_OneScriptCallPerBatch(t *testing.T) {
	// GIVEN a limiter whose script is already loaded
	r := harness.StartRedis(t)
	c := r.Client()
	l := newLimiter(t, c, 10, time.Minute)
	decideOne(t, l, "warm", "up")
	before := harness.ScriptCalls(t, c)

	// WHEN a batch of 10 requests for 3 creators is decided
	var reqs []ratelimit.Request
	for i := range 10 {
		reqs = append(reqs, ratelimit.Request{Key: fmt.Sprint("creator-", i%3), ID: fmt.Sprint("m", i)})
	}
	ds, err := l.Decide(context.Background(), reqs)
	if err != nil || len(ds) != 10 {
		t.Fatalf("Decide = %d decisions, %v", len(ds), err)
	}

	// THEN Redis ran exactly one script command
	if got := harness.ScriptCalls(t, c) - before; got != 1 {
		t.Fatalf("script calls for one batch = %d, want 1", got)
	}
}

func TestDecide_RecoversFromNoScriptAndFailsWhileRedisIsDown(t *testing.T) {
	// GIVEN a limiter that has run once
	r := harness.StartRedis(t)
	c := r.Client()
	l := newLimiter(t, c, 10, time.Minute)
	decideOne(t, l, "c", "1")

	// WHEN the scripts are flushed
	if err := c.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// THEN the next decision still works
	if d := decideOne(t, l, "c", "2"); !d.Allowed {
		t.Fatalf("after SCRIPT FLUSH: %+v", d)
	}

	// WHEN Redis is down
	r.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := l.Decide(ctx, []ratelimit.Request{{Key: "c", ID: "3"}})
	// THEN Decide fails (callers must not forward)
	if err == nil {
		t.Fatal("Decide with Redis down succeeded")
	}

	// WHEN it comes back empty (a failover to an empty node)
	r.Restart()
	// THEN it holds everyone (the fence), it does not forget the window
	if d := decideOne(t, l, "c", "4"); d.Allowed || !d.Fenced {
		t.Fatalf("after an empty restart: %+v, want fenced", d)
	}
}

func TestDecide_ConcurrentCallersNeverExceedTheLimitInAnyRollingWindow(t *testing.T) {
	// GIVEN 3 creators, 5 per 200 ms, and 16 concurrent callers, each with
	// 15 new messages and its own denied messages to retry when due
	r := harness.StartRedis(t)
	const limit, window, callers, perCaller = 5, 200 * time.Millisecond, 16, 15
	l := newLimiter(t, redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 32}), limit, window)
	var mu sync.Mutex
	approvals := map[string][]time.Time{}
	approvedIDs := map[string]int{}
	// Bounded by decisions, not by the wall clock (a loaded CPU only slows
	// the simulation down): a caller's 15 messages need far fewer batches
	// than this even if every one is denied in every window of the run.
	const maxBatches = 2000
	var wg sync.WaitGroup
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			pending := &redeliveries{}
			keyOf := map[string]string{}
			for i := range perCaller {
				id := fmt.Sprintf("g%d-%d", g, i)
				keyOf[id] = fmt.Sprint("creator-", rng.IntN(3))
				heap.Push(pending, redelivery{at: time.Now().Add(time.Duration(rng.IntN(300)) * time.Millisecond), id: id})
			}
			for batches := 0; pending.Len() > 0 && batches < maxBatches; batches++ {
				if wait := time.Until((*pending)[0].at); wait > 0 {
					time.Sleep(wait)
				}
				var reqs []ratelimit.Request
				for pending.Len() > 0 && len(reqs) < 10 && !(*pending)[0].at.After(time.Now()) {
					id := heap.Pop(pending).(redelivery).id
					reqs = append(reqs, ratelimit.Request{Key: keyOf[id], ID: id})
				}
				ds, err := l.Decide(context.Background(), reqs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i, d := range ds {
					if d.Allowed {
						approvals[reqs[i].Key] = append(approvals[reqs[i].Key], d.At)
						approvedIDs[reqs[i].ID]++
					} else {
						heap.Push(pending, redelivery{at: time.Now().Add(d.RetryAfter + time.Duration(rng.IntN(5))*time.Millisecond), id: reqs[i].ID})
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	// THEN every message was approved exactly once, and no creator's rolling
	// window holds more than the limit
	if len(approvedIDs) != callers*perCaller {
		t.Fatalf("approved %d distinct messages of %d", len(approvedIDs), callers*perCaller)
	}
	for id, n := range approvedIDs {
		if n != 1 {
			t.Fatalf("%s approved %d times", id, n)
		}
	}
	for key, times := range approvals {
		assertRollingWindow(t, key, times, limit, window)
	}
}

// redelivery is a denied message due back at a time, as SQS would return it.
type redelivery struct {
	at time.Time
	id string
}
type redeliveries []redelivery

func (h redeliveries) Len() int           { return len(h) }
func (h redeliveries) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h redeliveries) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *redeliveries) Push(x any)        { *h = append(*h, x.(redelivery)) }
func (h *redeliveries) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func TestDecide_FIFOBacklogOf200DrainsWithAtMostTwoReceivesPerMessage(t *testing.T) {
	// GIVEN 200 messages of one creator at the head of a FIFO group, 10 per
	// 250 ms, received as AWS hands out a group: the first 10 in order
	r := harness.StartRedis(t)
	const limit, window, backlog = 10, 250 * time.Millisecond, 200
	l := newLimiter(t, r.Client(), limit, window)
	queue := make([]string, backlog)
	for i := range queue {
		queue[i] = fmt.Sprint("m", i)
	}
	start := time.Now()

	// WHEN each batch is decided; the approved leave the queue, the first
	// denied and everything after it come back together after RetryAfter
	// (+ up to 15 ms of delivery lateness)
	rng := rand.New(rand.NewPCG(1, 2))
	receives, approvals, order := 0, []time.Time{}, []string{}
	// Bounded by receives of a batch, not by the wall clock: 200 messages
	// at two receives each are 40 batches; 100 times that is a livelock.
	for batches := 0; len(queue) > 0 && batches < 100*(2*backlog/10); batches++ {
		batch := queue[:min(10, len(queue))]
		reqs := make([]ratelimit.Request, len(batch))
		for i, id := range batch {
			reqs[i] = ratelimit.Request{Key: "creator", ID: id}
		}
		ds, err := l.Decide(context.Background(), reqs)
		if err != nil {
			t.Fatal(err)
		}
		receives += len(batch)
		n := 0
		for n < len(ds) && ds[n].Allowed {
			approvals, order = append(approvals, ds[n].At), append(order, batch[n])
			n++
		}
		for _, d := range ds[n:] {
			if d.Allowed {
				t.Fatalf("a message was approved after an earlier one of its creator was denied: %+v", ds)
			}
		}
		queue = queue[n:]
		if n < len(ds) {
			time.Sleep(ds[n].RetryAfter + time.Duration(rng.Int64N(int64(15*time.Millisecond))))
		}
	}

	// THEN all are approved in order, within the limit, at ≤ 2 receives each
	if len(approvals) != backlog {
		t.Fatalf("approved %d of %d", len(approvals), backlog)
	}
	for i, id := range order {
		if id != fmt.Sprint("m", i) {
			t.Fatalf("approval %d is %s: order broken", i, id)
		}
	}
	assertRollingWindow(t, "creator", approvals, limit, window)
	ratio := float64(receives) / backlog
	t.Logf("backlog %d: %d receives, %.2f per forwarded message, drained in %s (ideal %s)", backlog, receives, ratio,
		time.Since(start).Round(time.Millisecond), time.Duration(backlog/limit-1)*window)
	if ratio > 2 {
		t.Fatalf("%.2f receives per message, want ≤ 2", ratio)
	}
}

func TestRestamp_MovesExactlyTheApprovalItNamesToNowSoItsWindowEndsLater(t *testing.T) {
	// GIVEN a limit of 3 per window, spent by "a" twice (two tasks sending
	// one message: review 22 J) and then "b", and an approval name nobody
	// was given
	r := harness.StartRedis(t)
	l := newLimiter(t, r.Client(), 3, 2*time.Second)
	first := decideOne(t, l, "c", "a")
	second := decideOne(t, l, "c", "a")
	decideOne(t, l, "c", "b")
	ctx := context.Background()
	if first.Approval == "" || first.Approval == second.Approval {
		t.Fatalf("approvals %q and %q: want two distinct names", first.Approval, second.Approval)
	}
	if moved, err := l.Restamp(ctx, "c", "a@0#1"); err != nil || moved {
		t.Fatalf("Restamp(a@0#1) = %t, %v: an approval nobody was given must not move", moved, err)
	}
	before := decideOne(t, l, "c", "probe")
	// WHEN the first send of "a" ends a moment later and its approval is
	// restamped
	time.Sleep(200 * time.Millisecond)
	if moved, err := l.Restamp(ctx, "c", first.Approval); err != nil || !moved {
		t.Fatalf("Restamp(%s) = %t, %v", first.Approval, moved, err)
	}
	// THEN the window has room only once the second "a" leaves it, not
	// the first: the next room comes no earlier than before, the log still
	// holds three approvals, and the moved one is the first, now the
	// newest
	after := decideOne(t, l, "c", "probe")
	if before.Allowed || after.Allowed {
		t.Fatalf("a full window approved: before %+v, after %+v", before, after)
	}
	if after.At.Add(after.RetryAfter).Before(before.At.Add(before.RetryAfter)) {
		t.Fatalf("room came earlier after the restamp: %s then %s", before.At.Add(before.RetryAfter), after.At.Add(after.RetryAfter))
	}
	entries := r.Client().ZRangeWithScores(ctx, l.Config().LogKey("c"), 0, -1).Val()
	if len(entries) != 3 || entries[0].Member.(string) != second.Approval || entries[2].Member.(string) != first.Approval {
		t.Fatalf("log after restamping the first approval of a: %v (first %s, second %s)", entries, first.Approval, second.Approval)
	}
}

func TestHold_KeepsAnUnansweredApprovalInTheWindowUntilItCanNoLongerLand(t *testing.T) {
	// GIVEN a limit of 1 per 300 ms window, spent by "hung", whose send got
	// no answer and may land at the site up to 1 s from now
	r := harness.StartRedis(t)
	l := newLimiter(t, r.Client(), 1, 300*time.Millisecond)
	hung := decideOne(t, l, "c", "hung")
	ctx := context.Background()
	if moved, err := l.Hold(ctx, "c", hung.Approval, time.Second); err != nil || !moved {
		t.Fatalf("Hold(hung) = %t, %v", moved, err)
	}
	// WHEN the creator's next send asks after its window would have ended
	time.Sleep(400 * time.Millisecond)
	d := decideOne(t, l, "c", "next")
	// THEN it waits until one window after the last moment "hung" may land
	if d.Allowed || d.RetryAfter < 600*time.Millisecond {
		t.Fatalf("next send %+v: admitted (or told to retry too early) while the unanswered one may still land", d)
	}
}

func TestDecide_AnEmptiedRedisFencesAHoldingLimiterForASpanAndItsMaxHold(t *testing.T) {
	// GIVEN a limit of 1 per 300 ms whose approvals may be held up to 1 s
	// (the scraper's gate and its late-commit horizon), an approval held
	// that far, and then Redis emptied (the hold is forgotten)
	r := harness.StartRedis(t)
	c := r.Client()
	cfg := ratelimit.Config{Limit: 1, Window: 300 * time.Millisecond, KeyPrefix: "held", MaxHold: time.Second}
	l, err := ratelimit.New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	harness.PrimeFence(t, c, cfg.FenceKey())
	hung := decideOne(t, l, "c", "hung")
	if moved, err := l.Hold(context.Background(), "c", hung.Approval, time.Second); err != nil || !moved {
		t.Fatalf("Hold(hung) = %t, %v", moved, err)
	}
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// WHEN the creator's next send asks right after the loss
	d := decideOne(t, l, "c", "next")
	// THEN it is fenced for the window and the max hold together (Redis
	// TIME of the decision, so no local clock is compared), past the last
	// moment the forgotten hold counted
	if d.Allowed || !d.Fenced || d.RetryAfter != cfg.Span()+cfg.MaxHold {
		t.Fatalf("first decision after the loss = %+v, want fenced for %s", d, cfg.Span()+cfg.MaxHold)
	}
	// AND a limiter that never holds (MaxHold 0, the rate limiter) on the
	// same Redis is fenced for one span, as before
	other, err := ratelimit.New(c, ratelimit.Config{Limit: 1, Window: 300 * time.Millisecond, KeyPrefix: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if d := decideOne(t, other, "c", "x"); d.Allowed || !d.Fenced || d.RetryAfter != 300*time.Millisecond {
		t.Fatalf("a limiter without holds: %+v, want fenced for one span", d)
	}
}

// switchedScripter sends every script call to the Redis it points to now:
// a failover or failback seen from one caller.
type switchedScripter struct {
	mu  sync.Mutex
	now *redis.Client
}

func (s *switchedScripter) to(c *redis.Client) { s.mu.Lock(); s.now = c; s.mu.Unlock() }
func (s *switchedScripter) c() *redis.Client   { s.mu.Lock(); defer s.mu.Unlock(); return s.now }
func (s *switchedScripter) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return s.c().Eval(ctx, script, keys, args...)
}
func (s *switchedScripter) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return s.c().EvalSha(ctx, sha1, keys, args...)
}
func (s *switchedScripter) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return s.c().EvalRO(ctx, script, keys, args...)
}
func (s *switchedScripter) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return s.c().EvalShaRO(ctx, sha1, keys, args...)
}
func (s *switchedScripter) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return s.c().ScriptExists(ctx, hashes...)
}
func (s *switchedScripter) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return s.c().ScriptLoad(ctx, script)
}

// primaryAndReplica starts two Redis servers, an old primary P and a
// replica S (separate processes: what S holds of P is what a test copies),
// both fences primed, and a limiter of 2 per 2 s whose calls go to P until
// via.to switches them.
func primaryAndReplica(t *testing.T) (p, s *redis.Client, via *switchedScripter, l *ratelimit.Limiter, cfg ratelimit.Config) {
	t.Helper()
	p, s = harness.StartRedis(t).Client(), harness.StartRedis(t).Client()
	cfg = ratelimit.Config{Limit: 2, Window: 2 * time.Second, KeyPrefix: "test"}
	via = &switchedScripter{now: p}
	l, err := ratelimit.New(via, cfg)
	if err != nil {
		t.Fatal(err)
	}
	harness.PrimeFence(t, p, cfg.FenceKey())
	harness.PrimeFence(t, s, cfg.FenceKey())
	return p, s, via, l, cfg
}

func TestDecide_ACallerBackOnAServerThatNeverSawItsLatestApprovalsIsFenced(t *testing.T) {
	// GIVEN 2 per 2 s and an old primary P whose fence names P itself (it
	// served before, is cut off while a replica S serves, and never sees
	// S's writes), and a caller that decided on P
	const limit, window = 2, 2 * time.Second
	p, s, via, l, _ := primaryAndReplica(t)
	decideOne(t, l, "other", "on-p") // P's fence names P
	// AND the caller moved to S: fenced there first (S is new to it), then
	// the creator's 2 sends on S
	via.to(s)
	for i := 0; i < limit; {
		d := decideOne(t, l, "c", fmt.Sprint("s", i))
		switch {
		case d.Allowed:
			i++
		case d.Fenced && d.RetryAfter <= window:
			time.Sleep(d.RetryAfter + 10*time.Millisecond)
		default:
			t.Fatalf("send %d on S: %+v, want allowed after the fence", i, d)
		}
	}
	// WHEN it is sent back to P (a failback the wrong way round: P's
	// fence still names P, its log has none of S's approvals)
	via.to(p)
	// THEN its next decision there is fenced, not a third send in the
	// window S's two are in
	if d := decideOne(t, l, "c", "p0"); d.Allowed || !d.Fenced {
		t.Fatalf("first decision back on P = %+v, want fenced (P never held S's approvals)", d)
	}
}

func TestDecide_AnApprovalIsNamedByItsExactMicrosecond(t *testing.T) {
	// GIVEN a limiter
	r := harness.StartRedis(t)
	l := newLimiter(t, r.Client(), 10, time.Second)
	// WHEN it approves a request
	d := decideOne(t, l, "c", "m")
	// THEN the approval names the request and its Redis time to the
	// microsecond (a float's "1.7964133236549e+15" would name two
	// approvals of the id within 100 µs alike: one ZADD spending nothing)
	want := fmt.Sprintf("m@%d#1", d.At.UnixMicro())
	if !d.Allowed || d.Approval != want {
		t.Fatalf("approval %q (allowed %t), want %q", d.Approval, d.Allowed, want)
	}
}

func TestRestamp_OnAnotherServerFencesTheCallersNextDecisionBackOnTheFirst(t *testing.T) {
	// GIVEN an old primary P and its replica S, both fences primed, and a
	// caller whose send was approved on P (the approval replicated to S)
	p, s, via, l, cfg := primaryAndReplica(t)
	ctx := context.Background()
	d := decideOne(t, l, "c", "m1")
	if !d.Allowed {
		t.Fatalf("first decision on P = %+v, want allowed", d)
	}
	log, err := p.ZRangeWithScores(ctx, cfg.LogKey("c"), 0, -1).Result()
	if err != nil || len(log) != 1 {
		t.Fatalf("P's log %v, %v", log, err)
	}
	if err := s.ZAdd(ctx, cfg.LogKey("c"), log...).Err(); err != nil {
		t.Fatal(err)
	}
	// AND a failover while the send was at the site: its restamp runs on S
	via.to(s)
	if moved, err := l.Restamp(ctx, "c", d.Approval); err != nil || !moved {
		t.Fatalf("Restamp on S = %t, %v", moved, err)
	}
	// WHEN S is lost and P, cut off all along (its fence still names P,
	// its log holds the approval at its decision, not its end), serves
	// the caller again
	via.to(p)
	// THEN the caller's next decision there is fenced: it saw S on the
	// restamp as on a decision (review 22 Q A)
	if d := decideOne(t, l, "c", "m2"); d.Allowed || !d.Fenced {
		t.Fatalf("first decision back on P = %+v, want fenced (P never held the restamp made on S)", d)
	}
}

func TestRestamp_BackOnTheOldServerFencesItForEveryDecisionAfter(t *testing.T) {
	// GIVEN an old primary P and a replica S, both fences primed, and a
	// caller that decided on P, then on S (it failed over)
	p, s, via, l, cfg := primaryAndReplica(t)
	decideOne(t, l, "other", "on-p")
	via.to(s)
	var onS ratelimit.Decision
	for range 100 {
		if onS = decideOne(t, l, "c", "m1"); onS.Allowed || !onS.Fenced {
			break
		}
		time.Sleep(onS.RetryAfter + 10*time.Millisecond)
	}
	if !onS.Allowed {
		t.Fatalf("decision on S = %+v, want allowed after its fence", onS)
	}
	// WHEN P, cut off all along, serves again between that send's decision
	// and its restamp (the restamp runs on P and finds nothing to move)
	via.to(p)
	if _, err := l.Restamp(context.Background(), "c", onS.Approval); err != nil {
		t.Fatal(err)
	}
	// THEN the next decision on P is fenced all the same: the restamp saw
	// the move and wrote P's fence (review 22 L E's failback, one call
	// later), for this caller and any other
	if d := decideOne(t, l, "c", "m2"); d.Allowed || !d.Fenced {
		t.Fatalf("first decision on P after the restamp = %+v, want fenced", d)
	}
	other, err := ratelimit.New(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if d := decideOne(t, other, "c", "m3"); d.Allowed || !d.Fenced {
		t.Fatalf("another caller's decision on P = %+v, want fenced", d)
	}
}
