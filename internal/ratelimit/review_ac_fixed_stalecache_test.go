package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
)

// failingOnce fails the next script call (a timeout, a dropped connection)
// while fail is set, then passes calls to the Redis it points to.
type failingOnce struct {
	switchedScripter
	fmu  sync.Mutex
	fail bool
}

func (f *failingOnce) failing(ctx context.Context) *redis.Cmd {
	f.fmu.Lock()
	defer f.fmu.Unlock()
	if !f.fail {
		return nil
	}
	f.fail = false
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(errors.New("i/o timeout"))
	return cmd
}

func (f *failingOnce) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	if c := f.failing(ctx); c != nil {
		return c
	}
	return f.switchedScripter.Eval(ctx, script, keys, args...)
}

func (f *failingOnce) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	if c := f.failing(ctx); c != nil {
		return c
	}
	return f.switchedScripter.EvalSha(ctx, sha1, keys, args...)
}

// TestRev22ACAStaleRecordCachedByAFailedDecideLetsAFailbackDoubleTheLimit
//
// Promise (b): never more than the gate's limit per creator in a rolling
// window, across failovers and failbacks and several tasks.
//
// Fault: the replica S serves and the gate is idle for a while (longer
// than span + MaxHold + refresh: a night, a quiet environment), so the
// record names S with an old time. Task B's Decide reads that record and
// its script call then fails (a timeout, a dropped connection, a
// cancelled context: nothing exotic), so B caches the stale record for
// refresh and remembers no server. Task A then sends the creator's 2 on S
// (S is not fenced: its fence names S, and A's memory is S), writing the
// record anew. Within refresh, a failback to the old primary P (cut off,
// it never saw A's 2); B decides there.
//
// Observed: B is not fenced on P (its cached record is S at an expired
// time, its memory is empty) and approves 2 more of the creator: 4
// approvals within one window of 2.
//
// Why: shared.go recordSeen (l.shared, l.sharedRead = shared, time.Now()
// before the script ran) caches a read whose decision never happened, and
// serves it for refresh; limiter.lua elsewhere() then sees S as expired.
// The design's residual (docs/design.md section 3) assumes a server is
// fenced for span + MaxHold from its first decision after a read could
// miss it, so a miss needs the record to refuse writes for about half of
// that; a server resuming after an idle spell is not fenced at all (its
// fence names itself, the evidence is older than the fence), so one read
// older than one successful write is enough.
//
// Suggested fix: cache a read only together with a decision that used it
// (set sharedRead after the script succeeded, or drop the cache on a
// script error); better, never serve a cached read that is older than
// the caller's own last decision attempt, or re-read the record whenever
// the cached entry's time (+refresh) is already older than span +
// MaxHold (an expired entry says nothing and costs one read only on the
// first decision after an idle spell).
//
// Fixed: the record is no longer read apart from a write. A caller
// announces its server (ServerRecord.Announce: one atomic write whose
// answer is the record after it) before its first decision there and
// once its announcement is refresh old, and decides only after the
// write (limiter.lua refuses otherwise and asks for the announcement);
// the announcement's answer is the evidence. Of two callers announcing
// different servers the second sees the first and is fenced.
func TestRev22ACAStaleRecordCachedByAFailedDecideLetsAFailbackDoubleTheLimit(t *testing.T) {
	const limit = 2
	p, s, _, _, cfg := primaryAndReplica(t)
	// A wider fence than the harness's so that B's cache (refresh = 3 s)
	// outlives the few calls between its read and its decision on P on a
	// busy machine.
	cfg.MaxHold = 4 * time.Second
	fenceFor := cfg.Span() + cfg.MaxHold
	refresh := fenceFor / 2
	rec := &sharedRecord{}

	// Task A decides on P, then S serves (A is fenced there first, then
	// S's fence names S and the record names S).
	viaA := &switchedScripter{now: p}
	a, err := ratelimit.NewShared(viaA, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	failOverTo(t, a, viaA, p, s, fenceFor)
	// The gate is idle on S for longer than the record's reach.
	time.Sleep(fenceFor + refresh + 500*time.Millisecond)

	// Task B (a new task) reads the record; its script call fails.
	viaB := &failingOnce{switchedScripter: switchedScripter{now: s}, fail: true}
	b, err := ratelimit.NewShared(viaB, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Decide(context.Background(), []ratelimit.Request{{Key: "c", ID: "b-first"}}); err == nil {
		t.Fatal("B's first Decide should have failed (its Redis call timed out)")
	}

	// A sends the creator's limit on S (not fenced), writing the record.
	var times []time.Time
	for i := range limit {
		d := decideOne(t, a, "c", fmt.Sprint("a", i))
		if !d.Allowed {
			t.Fatalf("A's send %d on S after the idle spell: %+v, want allowed", i, d)
		}
		times = append(times, d.At)
	}
	rec.mu.Lock()
	recServer := rec.last
	rec.mu.Unlock()

	// Failback to P, which never saw A's sends; B decides there.
	viaB.to(p)
	for i := range limit {
		d := decideOne(t, b, "c", fmt.Sprint("b", i))
		if d.Allowed {
			times = append(times, d.At)
		}
	}
	t.Logf("record names %q; approvals at %v", recServer, times)
	assertRollingWindow(t, "c", times, limit, cfg.Window)
}
