package scraper_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/test/harness"
)

// TestRev22MAFailbackSeenByAnotherScraperTaskLetsTheCreatorOverTheLimit:
//
// Promise (b): the site never receives more than the gate's limit of sends
// per creator in any rolling window.
//
// Fault: review L E's split brain healed the wrong way round (Redis P, run
// id A, cut off while its replica S, run id B, is promoted and serves;
// then S is lost and P, never resynced, same process, same run id and
// replication id, is the primary again), but the task that decides on P
// after the failback is not the task that decided on S: a second scraper
// task (the service runs several; FIFO hands a creator's next message to
// whichever polls first), or the same task restarted (ECS replacing it,
// a deploy). Gate: 2 sends per 15 s.
//
// Timeline: m1 sent on P. Failover: task 1's gate is fenced on S for a span
// + horizon, then m2 and m3 are admitted on S (S's log: 2). Failback to P.
// Task 2 (a new Limiter: no memory, caller_server empty) takes m4 and m5.
//
// Why (internal/ratelimit/limiter.lua:73 "local moved = caller_server ~= (empty)
// and ..."): the only sign of a failback to a server that never saw the
// other's writes is the caller's in-process memory (Limiter.last,
// limiter.go:149, saw :160); a caller without it (caller_server empty) is never
// "moved". P's fence still names P's own run id + replid
// (limiter.lua:74 "seen ~= server" false) and its epoch is long past, so
// nothing holds; P's log holds only m1 (older than the window). m4 and m5
// are admitted at once: 4 sends within one 15 s window at the site.
//
// Suggested fix: make the evidence of a failover shared, not per process.
// P cannot learn from itself that S served (it never saw S's writes), so
// the evidence must live outside that Redis: e.g. record every server the
// gate decided on, with its time, in the mark store (DynamoDB) or another
// shared store, and pass the newest one as caller_server to every
// Limiter, a new one included; or fence a caller without memory (a new
// process) on its first decision unless the server proves it served
// continuously for span + max hold (INFO uptime_in_seconds and
// master_repl_offset cannot prove it for a cut-off primary; the shared
// record can).
//
// Fixed: the send gate keeps a shared record of the servers it decides on
// in the attempts table (ratelimit.NewShared, scraper.DynamoGateServers):
// every task announces its server there before its first decision on it
// (and once per half span + max hold), and decides with the record as its
// announcement left it, which fences a decision on another server as it
// fences a caller that saw the failover. Task 2's announcement of P
// answers S, and its first decision on P is fenced. (The same failback
// after the gate was idle on S: review 22 AC,
// internal/ratelimit/review_ac_fixed_*_test.go.)
func TestRev22MAFailbackSeenByAnotherScraperTaskLetsTheCreatorOverTheLimit(t *testing.T) {
	t.Parallel()
	cfg := shortHorizon()
	cfg.ChatFaultPatience = 3 * time.Second
	const window = 15 * time.Second
	gateCfg := ratelimit.Config{Limit: 2, Window: window, Margin: 200 * time.Millisecond, KeyPrefix: "gate"}
	f := setupWithGate(t, cfg, gateCfg)
	rp := f.primaryWithReplica(t)
	pAddr, proxy := rp.pAddr, rp.proxy
	var sends atomic.Int64
	var failedOver, failedBack atomic.Bool
	var h harnessErrors
	ctx := context.Background()
	front := func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				n := sends.Add(1)
				origin.ServeHTTP(w, r)
				if n == 3 && failedBack.CompareAndSwap(false, true) {
					// S lost; P, cut off all along, is the primary again.
					proxy.switchTo(pAddr)
				}
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") && sends.Load() == 1 && failedOver.CompareAndSwap(false, true) {
				// P cut off (its process and data stay), S promoted.
				rp.failOver(ctx, &h)
			}
			origin.ServeHTTP(w, r)
		})
	}
	opts := browser.Options{DriverDir: harness.DriverDir(t)}
	// Task 1: m1 on P, m2 and m3 on S.
	f.behindWithGate(cfg, front, opts, gateCfg)
	first := []string{"m1", "m2", "m3"}
	for _, text := range first {
		f.enqueue(f.newMessage("creator-a", text))
	}
	ok1 := f.runUntil(120*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	h.fatalIfAny(t)
	if !ok1 || !failedOver.Load() || !failedBack.Load() {
		t.Fatalf("harness: task 1 done %t, failover %t, failback %t; site %q", ok1, failedOver.Load(), failedBack.Load(), f.site.Texts("creator-a"))
	}
	// Task 2 (another task of the service, or task 1 restarted): its own
	// gate, which never decided on S.
	f.behindWithGate(cfg, front, opts, gateCfg)
	rest := []string{"m4", "m5"}
	for _, text := range rest {
		f.enqueue(f.newMessage("creator-a", text))
	}
	ok2 := f.runUntil(120*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	texts := append(first, rest...)
	got := f.site.Texts("creator-a")
	if !ok2 || strings.Join(got, ",") != strings.Join(texts, ",") {
		t.Fatalf("ok %t: the site has %q", ok2, got)
	}
	if n := f.site.MaxInWindow(window)["creator-a"]; n > gateCfg.Limit {
		t.Fatalf("%d sends in one %s window at the site (limit %d)\n%s", n, window, gateCfg.Limit, f.site.Summary([]string{"creator-a"}, gateCfg.Limit, window))
	}
}
