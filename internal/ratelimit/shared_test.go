package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
)

// sharedRecord is a ServerRecord in memory: the record is one item whose
// store (DynamoDB: scraper.DynamoGateServers, tested against dynalite
// there) writes it and answers what it holds after the write in one
// atomic call, so the limiter's use of it is what these tests are about.
// refuse makes writes fail.
type sharedRecord struct {
	mu      sync.Mutex
	servers map[string]int64
	last    string // the server announced last
	writes  int
	refuse  bool
}

func (r *sharedRecord) Announce(_ context.Context, _, server string, at int64, drop map[string]int64) (map[string]int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		return nil, errors.New("refused")
	}
	if r.servers == nil {
		r.servers = map[string]int64{}
	}
	for s, seen := range drop {
		if s != server && r.servers[s] == seen {
			delete(r.servers, s)
		}
	}
	r.servers[server], r.last, r.writes = at, server, r.writes+1
	return maps.Clone(r.servers), nil
}

// sendTwiceOn makes l approve limit sends of key "c" on its current
// server, waiting out any fence.
func sendTwiceOn(t *testing.T, l *ratelimit.Limiter, limit int, window time.Duration) {
	t.Helper()
	for i := 0; i < limit; {
		d := decideOne(t, l, "c", fmt.Sprint("s", i))
		switch {
		case d.Allowed:
			i++
		case d.Fenced && d.RetryAfter <= window:
			time.Sleep(d.RetryAfter + 10*time.Millisecond)
		default:
			t.Fatalf("send %d: %+v, want allowed after the fence", i, d)
		}
	}
}

func TestDecide_ANewCallerOnAServerThatNeverSawAnotherCallersApprovalsIsFencedByTheSharedRecord(t *testing.T) {
	// GIVEN 2 per 2 s, an old primary P whose fence names P itself and a
	// replica S, and a caller (task 1) that decided on P, then on S (its
	// two sends there), sharing its record
	const limit, window = 2, 2 * time.Second
	p, s, via, _, cfg := primaryAndReplica(t)
	rec := &sharedRecord{}
	task1, err := ratelimit.NewShared(via, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	decideOne(t, task1, "other", "on-p")
	via.to(s)
	sendTwiceOn(t, task1, limit, window)
	// WHEN a caller that never decided on S (another task, a new process)
	// decides on P (a failback to a primary that never saw S's writes)
	task2, err := ratelimit.NewShared(&switchedScripter{now: p}, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	d := decideOne(t, task2, "c", "p0")
	// THEN it is fenced: the record named S, not a third send in the
	// window S's two are in
	if d.Allowed || !d.Fenced {
		t.Fatalf("a new caller's first decision back on P = %+v, want fenced (the record names S)", d)
	}
	// AND without the record it would not have been (what the record
	// is for: P itself cannot tell)
	p2, s2, via2, _, cfg2 := primaryAndReplica(t)
	alone, err := ratelimit.New(via2, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	decideOne(t, alone, "other", "on-p")
	via2.to(s2)
	sendTwiceOn(t, alone, limit, window)
	fresh, err := ratelimit.New(&switchedScripter{now: p2}, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if d := decideOne(t, fresh, "c", "p0"); !d.Allowed {
		t.Fatalf("control: a new caller without a record = %+v, want allowed (P cannot tell)", d)
	}
}

func TestDecide_AnApprovalOnAServerTheRecordRefusedIsNoApproval(t *testing.T) {
	// GIVEN a shared record that refuses writes
	_, _, via, _, cfg := primaryAndReplica(t)
	rec := &sharedRecord{refuse: true}
	l, err := ratelimit.NewShared(via, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	// WHEN the limiter decides
	_, err = l.Decide(context.Background(), []ratelimit.Request{{Key: "c", ID: "m1"}})
	// THEN the call fails: no approval made on a server the record does
	// not name may be used
	if err == nil {
		t.Fatal("Decide with a refused record write succeeded")
	}
	// AND once the record takes writes, the next decision writes it, and
	// the ones after it do not (one write per caller per refresh)
	rec.mu.Lock()
	rec.refuse = false
	rec.mu.Unlock()
	for i := range 3 {
		if d := decideOne(t, l, "c", fmt.Sprint("m", i+2)); d.Fenced {
			t.Fatalf("decision %d fenced: %+v", i, d)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.writes != 1 || rec.last == "" {
		t.Fatalf("the record was written %d times (server %q), want once", rec.writes, rec.last)
	}
}

func TestDecide_ARecordNamingThisServerFencesNothing(t *testing.T) {
	// GIVEN a caller that decided on P and wrote the record
	p, _, _, _, cfg := primaryAndReplica(t)
	rec := &sharedRecord{}
	first, err := ratelimit.NewShared(&switchedScripter{now: p}, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	decideOne(t, first, "other", "m0")
	// WHEN a new caller decides on P
	second, err := ratelimit.NewShared(&switchedScripter{now: p}, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	// THEN it is not fenced (a new task does not wait a span)
	if d := decideOne(t, second, "c", "m1"); !d.Allowed {
		t.Fatalf("a new caller on the record's own server = %+v, want allowed", d)
	}
}

// failOverTo makes a decide on p, then on s once its fence (at most twice
// fenceFor) has passed: s then serves, its fence and the record naming s.
func failOverTo(t *testing.T, a *ratelimit.Limiter, via *switchedScripter, p, s *redis.Client, fenceFor time.Duration) {
	t.Helper()
	via.to(p)
	decideOne(t, a, "other", "on-p")
	via.to(s)
	for {
		d := decideOne(t, a, "other", "on-s")
		if d.Allowed {
			return
		}
		if !d.Fenced || d.RetryAfter > 2*fenceFor {
			t.Fatalf("A on S: %+v", d)
		}
		time.Sleep(d.RetryAfter + 10*time.Millisecond)
	}
}
