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

func newLimiter(t testing.TB, rdb redis.Scripter, limit int, window time.Duration) *ratelimit.Limiter {
	t.Helper()
	return newLimiterSlack(t, rdb, limit, window, 0)
}

func newLimiterSlack(t testing.TB, rdb redis.Scripter, limit int, window, slack time.Duration) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(rdb, ratelimit.Config{Limit: limit, Window: window, ReservationGrace: window, ReturnSlack: slack, KeyPrefix: "test"})
	if err != nil {
		t.Fatal(err)
	}
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
	err := ratelimit.Config{Limit: 0, Window: 0, ReservationGrace: -1, ReturnSlack: -1}.Validate()
	for _, want := range []string{"limit must be at least 1", "window must be at least 1ms", "grace must not be negative", "slack must not be negative"} {
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
	wantSlot := ds[0].At.Add(500 * time.Millisecond)
	if denied.Allowed || !denied.Slot.Equal(wantSlot) || denied.RetryAfter != wantSlot.Sub(denied.At) {
		t.Fatalf("4th = %+v, want denied with slot %s", denied, wantSlot)
	}
	// AND another creator is not affected
	if d := decideOne(t, l, "creator-b", "b0"); !d.Allowed {
		t.Fatalf("other creator denied: %+v", d)
	}

	// WHEN the denied message comes back early
	early := decideOne(t, l, "creator-a", "m3")
	// THEN it is denied again with its same slot
	if early.Allowed || !early.Slot.Equal(wantSlot) {
		t.Fatalf("early return = %+v, want denied with slot %s", early, wantSlot)
	}

	// WHEN it comes back at its slot
	time.Sleep(time.Until(wantSlot) + 5*time.Millisecond)
	// THEN it is allowed
	if d := decideOne(t, l, "creator-a", "m3"); !d.Allowed {
		t.Fatalf("at its slot: %+v, want allowed", d)
	}
}

func TestDecide_NewMessagesQueueBehindReservations(t *testing.T) {
	// GIVEN a full window and one message waiting for its slot
	r := harness.StartRedis(t)
	l := newLimiter(t, r.Client(), 2, 300*time.Millisecond)
	decideOne(t, l, "c", "a")
	decideOne(t, l, "c", "b")
	waiting := decideOne(t, l, "c", "w")

	// WHEN the window frees up before the waiting message returns
	time.Sleep(time.Until(waiting.Slot) + 5*time.Millisecond)
	newcomer := decideOne(t, l, "c", "n")

	// THEN the newcomer gets a slot, it does not take the waiting one's place
	// (there is room for both here: limit 2), and the waiting one still passes
	if !newcomer.Allowed {
		// capacity 2 freed, one kept for w: newcomer may pass
		t.Fatalf("newcomer = %+v, want allowed (two tokens came back, one is kept for w)", newcomer)
	}
	if d := decideOne(t, l, "c", "w"); !d.Allowed {
		t.Fatalf("waiting message = %+v, want allowed", d)
	}
	// AND a third one now waits a full window
	if d := decideOne(t, l, "c", "x"); d.Allowed {
		t.Fatalf("third = %+v, want denied", d)
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

	// WHEN it comes back empty (a failover)
	r.Restart()
	if d := decideOne(t, l, "c", "4"); !d.Allowed {
		t.Fatalf("after restart: %+v", d)
	}
}

func TestDecide_ConcurrentCallersNeverExceedTheLimitInAnyRollingWindow(t *testing.T) {
	// GIVEN 3 creators, 5 per 200 ms, and 16 concurrent callers, each with
	// 15 new messages and its own denied messages to retry when due
	r := harness.StartRedis(t)
	const limit, window, callers, perCaller = 5, 200 * time.Millisecond, 16, 15
	l := newLimiterSlack(t, redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 32}), limit, window, 10*time.Millisecond)
	var mu sync.Mutex
	approvals := map[string][]time.Time{}
	approvedIDs := map[string]int{}
	deadline := time.Now().Add(30 * time.Second)
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
			for pending.Len() > 0 && time.Now().Before(deadline) {
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

func TestDecide_BacklogOf200DrainsWithAtMostTwoReceivesPerMessage(t *testing.T) {
	// GIVEN 200 messages for one creator arriving at once, 10 per 250 ms
	r := harness.StartRedis(t)
	const limit, window, backlog = 10, 250 * time.Millisecond, 200
	const lateness = 15 * time.Millisecond
	l := newLimiterSlack(t, r.Client(), limit, window, lateness+5*time.Millisecond)
	rng := rand.New(rand.NewPCG(1, 2))
	pending := &redeliveries{}
	start := time.Now()
	for i := range backlog {
		heap.Push(pending, redelivery{at: start, id: fmt.Sprint("m", i)})
	}

	// WHEN each message is received, decided, and if denied returned after
	// its RetryAfter plus 0–15 ms of delivery lateness, in batches of up to
	// 10 of the messages that are due
	receives, approvals := 0, []time.Time{}
	for pending.Len() > 0 && time.Since(start) < 30*time.Second {
		if wait := time.Until((*pending)[0].at); wait > 0 {
			time.Sleep(wait)
		}
		var batch []redelivery
		for pending.Len() > 0 && len(batch) < 10 && !(*pending)[0].at.After(time.Now()) {
			batch = append(batch, heap.Pop(pending).(redelivery))
		}
		reqs := make([]ratelimit.Request, len(batch))
		for i, b := range batch {
			reqs[i] = ratelimit.Request{Key: "creator", ID: b.id}
		}
		ds, err := l.Decide(context.Background(), reqs)
		if err != nil {
			t.Fatal(err)
		}
		receives += len(batch)
		for i, d := range ds {
			if d.Allowed {
				approvals = append(approvals, d.At)
				continue
			}
			late := time.Duration(rng.Int64N(int64(lateness)))
			heap.Push(pending, redelivery{at: time.Now().Add(d.RetryAfter + late), id: batch[i].id})
		}
	}

	// THEN all are approved, within the limit, at ≤ 2 receives per message
	if len(approvals) != backlog {
		t.Fatalf("approved %d of %d", len(approvals), backlog)
	}
	assertRollingWindow(t, "creator", approvals, limit, window)
	ratio := float64(receives) / backlog
	t.Logf("backlog %d: %d receives, %.2f per forwarded message, drained in %s", backlog, receives, ratio, time.Since(start).Round(time.Millisecond))
	if ratio > 2 {
		t.Fatalf("%.2f receives per message, want ≤ 2", ratio)
	}
}

func TestDecide_ReturningMessagesLeaveInTheOrderOfTheirSlots(t *testing.T) {
	// GIVEN a full window and two messages reserved one after the other
	r := harness.StartRedis(t)
	l := longGrace(t, r.Client(), 1, 300*time.Millisecond)
	decideOne(t, l, "c", "a")
	first := decideOne(t, l, "c", "first")
	second := decideOne(t, l, "c", "second")
	if first.Allowed || second.Allowed || !second.Slot.After(first.Slot) {
		t.Fatalf("reservations %+v %+v", first, second)
	}
	// WHEN both slots have passed and the second comes back first
	time.Sleep(time.Until(second.Slot) + 5*time.Millisecond)
	early := decideOne(t, l, "c", "second")
	// THEN it waits for the first, which then goes, then the second
	if early.Allowed {
		t.Fatal("the later slot overtook the earlier one")
	}
	if d := decideOne(t, l, "c", "first"); !d.Allowed {
		t.Fatalf("first = %+v", d)
	}
	// (the window of 1 is now full again; the second gets its turn after it)
	time.Sleep(310 * time.Millisecond)
	if d := decideOne(t, l, "c", "second"); !d.Allowed {
		t.Fatalf("second = %+v", d)
	}
}

func TestDecide_ABatchIsDecidedInSlotOrder(t *testing.T) {
	// GIVEN two reserved messages returning in one batch, later slot first
	r := harness.StartRedis(t)
	l := longGrace(t, r.Client(), 1, 200*time.Millisecond)
	decideOne(t, l, "c", "a")
	first := decideOne(t, l, "c", "first")
	second := decideOne(t, l, "c", "second")
	time.Sleep(time.Until(second.Slot) + 5*time.Millisecond)
	ds, err := l.Decide(context.Background(), []ratelimit.Request{{Key: "c", ID: "second"}, {Key: "c", ID: "first"}})
	// THEN the earlier slot is the one approved, whatever the batch order
	if err != nil || ds[0].Allowed || !ds[1].Allowed {
		t.Fatalf("decisions %+v (%v); slots %s %s", ds, err, first.Slot, second.Slot)
	}
}

// longGrace keeps reservations for 10 s, so late returns still find them.
func longGrace(t testing.TB, rdb redis.Scripter, limit int, window time.Duration) *ratelimit.Limiter {
	t.Helper()
	l, err := ratelimit.New(rdb, ratelimit.Config{Limit: limit, Window: window, ReservationGrace: 10 * time.Second, KeyPrefix: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
