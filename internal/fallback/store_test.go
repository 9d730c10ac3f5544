package fallback_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/test/harness"
)

// clock is a settable clock (the replay's grace for missing sequences).
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time      { return time.UnixMilli(c.ms.Load()) }
func (c *clock) add(d time.Duration) { c.ms.Add(d.Milliseconds()) }

func newStore(t *testing.T) (*fallback.Store, *clock) {
	t.Helper()
	ddb := harness.StartDynalite(t)
	if err := emulator.CreateFallbackTable(context.Background(), ddb.DynamoDB, "fallback"); err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	c.ms.Store(time.Now().UnixMilli())
	return fallback.NewStore(ddb.DynamoDB, "fallback", c.now, 30*time.Second), c
}

// store puts texts for creator the way the API does: one reservation, then
// the items in order.
func store(t *testing.T, s *fallback.Store, creator string, texts ...string) {
	t.Helper()
	ctx := context.Background()
	first, err := s.Reserve(ctx, creator, len(texts))
	if err != nil {
		t.Fatal(err)
	}
	for i, text := range texts {
		if err := s.Put(ctx, creator+"/"+text, creator, first+int64(i), text, nil, 4, errors.New("sqs down")); err != nil {
			t.Fatal(err)
		}
	}
}

// recorder is the replay's sender: it records each creator's order.
type recorder struct {
	mu   sync.Mutex
	got  map[string][]string
	fail func(it fallback.Item) bool
}

func (r *recorder) send(_ context.Context, it fallback.Item) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil && r.fail(it) {
		return errors.New("injected: sqs down again")
	}
	if r.got == nil {
		r.got = map[string][]string{}
	}
	r.got[it.CreatorKey] = append(r.got[it.CreatorKey], it.Payload)
	return nil
}

func seq(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

// Issue 23 found m0..m7 replayed in Scan order (m1,m3,m5,m4,m0,...). Each
// creator's items are now queued in acceptance order, whatever the storage
// order, creators in parallel, at most limit per creator per run, each run resuming
// where the last stopped.
func TestReplayQueuesEachCreatorsItemsInAcceptanceOrderInBoundedRuns(t *testing.T) {
	s, _ := newStore(t)
	creators := []string{"creator-a", "creator-b", "creator-c"}
	// Interleaved requests: 8 single messages per creator, round-robin.
	for i := range 8 {
		for _, c := range creators {
			store(t, s, c, fmt.Sprintf("m%d", i))
		}
	}
	store(t, s, "creator-a", "m8", "m9") // a batch request
	waiting, err := s.Backlogs(context.Background(), creators)
	if err != nil || !waiting["creator-a"].Waiting() || waiting["creator-a"].Reserved != 10 {
		t.Fatalf("backlogs %+v, %v", waiting, err)
	}
	r := &recorder{}
	res, err := s.Replay(context.Background(), r.send, 7)
	if err != nil || res.Replayed != 3*7 {
		t.Fatalf("first run: %+v, %v (want 7 per creator: the limit)", res, err)
	}
	for range 10 {
		if res, err = s.Replay(context.Background(), r.send, 7); err != nil {
			t.Fatal(err)
		}
		if res.Replayed == 0 {
			break
		}
	}
	want := map[string][]string{"creator-a": seq("m", 0, 10), "creator-b": seq("m", 0, 8), "creator-c": seq("m", 0, 8)}
	for _, c := range creators {
		if !slices.Equal(r.got[c], want[c]) {
			t.Errorf("%s replayed %q, want %q", c, r.got[c], want[c])
		}
	}
	after, _ := s.Backlogs(context.Background(), creators)
	for _, c := range creators {
		if after[c].Waiting() {
			t.Errorf("%s still waiting after every item was replayed: %+v", c, after[c])
		}
	}
}

// An item that fails to queue stops its creator there (it is the first of
// the next run), never letting a later one overtake it; other creators go
// on.
func TestAFailedReplayStopsOnlyThatCreatorAndResumesInOrder(t *testing.T) {
	s, _ := newStore(t)
	store(t, s, "creator-a", seq("a", 0, 5)...)
	store(t, s, "creator-b", seq("b", 0, 5)...)
	failOnce := map[string]bool{"a2": true}
	r := &recorder{fail: func(it fallback.Item) bool {
		if failOnce[it.Payload] {
			failOnce[it.Payload] = false
			return true
		}
		return false
	}}
	res, err := s.Replay(context.Background(), r.send, 100)
	if err != nil || res.Failed != 1 || res.Replayed != 7 {
		t.Fatalf("first run %+v, %v: want a0 a1, a2 failed, b0..b4", res, err)
	}
	if _, err := s.Replay(context.Background(), r.send, 100); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.got["creator-a"], seq("a", 0, 5)) || !slices.Equal(r.got["creator-b"], seq("b", 0, 5)) {
		t.Fatalf("replayed %q", r.got)
	}
}

// A reserved sequence whose item was never stored (the request that
// reserved it answered "failed") holds its creator's later items back for
// the grace (an item still being written must not be overtaken), then is
// given up, and the creator stops waiting.
func TestAMissingSequenceHoldsTheCreatorForTheGraceThenIsSkipped(t *testing.T) {
	s, clk := newStore(t)
	store(t, s, "creator-a", "a0")
	if _, err := s.Reserve(context.Background(), "creator-a", 1); err != nil { // a1: never stored
		t.Fatal(err)
	}
	store(t, s, "creator-a", "a2")
	r := &recorder{}
	if _, err := s.Replay(context.Background(), r.send, 100); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.got["creator-a"], []string{"a0"}) {
		t.Fatalf("within the grace replayed %q, want only a0", r.got["creator-a"])
	}
	clk.add(31 * time.Second)
	if _, err := s.Replay(context.Background(), r.send, 100); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.got["creator-a"], []string{"a0", "a2"}) {
		t.Fatalf("after the grace replayed %q, want a0 a2", r.got["creator-a"])
	}
	// A reservation at the end never stored: waiting until the grace ends.
	if _, err := s.Reserve(context.Background(), "creator-a", 1); err != nil {
		t.Fatal(err)
	}
	_, _ = s.Replay(context.Background(), r.send, 100)
	if b, _ := s.Backlogs(context.Background(), []string{"creator-a"}); !b["creator-a"].Waiting() {
		t.Fatal("a fresh reservation was given up within the grace")
	}
	clk.add(31 * time.Second)
	_, _ = s.Replay(context.Background(), r.send, 100)
	if b, _ := s.Backlogs(context.Background(), []string{"creator-a"}); b["creator-a"].Waiting() {
		t.Fatalf("an old unstored reservation keeps the creator waiting: %+v", b["creator-a"])
	}
}

// Two replay runs racing queue each item once and in order.
func TestTwoRacingReplaysQueueEachItemOnceInOrder(t *testing.T) {
	s, _ := newStore(t)
	store(t, s, "creator-a", seq("a", 0, 12)...)
	r := &recorder{}
	for range 10 {
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = s.Replay(context.Background(), r.send, 100) }()
		}
		wg.Wait()
		if len(r.got["creator-a"]) == 12 {
			break
		}
	}
	if !slices.Equal(r.got["creator-a"], seq("a", 0, 12)) {
		t.Fatalf("replayed %q", r.got["creator-a"])
	}
}

// An item stored after its sequence was given up (its request outlived the
// lease) is behind done: it is still queued, late rather than never.
func TestAnItemStoredBehindDoneIsStillReplayed(t *testing.T) {
	s, clk := newStore(t)
	ctx := context.Background()
	first, err := s.Reserve(ctx, "creator-a", 1) // a0: its request is slow
	if err != nil {
		t.Fatal(err)
	}
	store(t, s, "creator-a", "a1")
	clk.add(31 * time.Second)
	r := &recorder{}
	if _, err := s.Replay(ctx, r.send, 100); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.got["creator-a"], []string{"a1"}) {
		t.Fatalf("replayed %q, want a1 (a0 given up: nothing stored)", r.got["creator-a"])
	}
	if err := s.Put(ctx, "creator-a/a0", "creator-a", first, "a0", nil, 4, errors.New("sqs down")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Replay(ctx, r.send, 100); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.got["creator-a"], []string{"a1", "a0"}) {
		t.Fatalf("replayed %q, want a1 then a0 (late, not lost)", r.got["creator-a"])
	}
	if n, _ := s.PendingCount(ctx); n != 0 {
		t.Fatalf("%d left pending", n)
	}
}
