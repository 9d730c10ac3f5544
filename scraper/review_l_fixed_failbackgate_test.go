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

// TestRev22LEFailbackToAnIsolatedOldPrimaryLetsTheCreatorOverTheLimit:
//
// Promise (b): never more than the gate's limit per creator per window at
// the site.
//
// Fault: Redis P (run id A) is cut off (a partition: the server process
// keeps running, its data frozen); its replica S (run id B) is promoted
// and serves; then S is lost and P, never resynced, is the primary again
// (a split brain healed the wrong way round; the same process, the same
// run id). A gate of 2 sends per 10 s.
//
// On S the gate's fence (written "0|A" on P) names another run: fenced a
// span + horizon, then S admits the second and third messages (2 in S's
// log). Back on P the fence still names A, P's own run id: no fence, and
// P's log holds only the first approval, older than the window. The fourth
// and fifth messages are admitted at once: four sends within one window
// (limit.lua: "seen ~= server" is the only sign of a lost write it checks;
// a process that lost writes made elsewhere while it was not primary keeps
// its run id).
func TestRev22LEFailbackToAnIsolatedOldPrimaryLetsTheCreatorOverTheLimit(t *testing.T) {
	t.Parallel()
	cfg := shortHorizon()
	cfg.ChatFaultPatience = 3 * time.Second
	gateCfg := ratelimit.Config{Limit: 2, Window: 10 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"}
	f := setupWithGate(t, cfg, gateCfg)
	rp := f.primaryWithReplica(t)
	pAddr, proxy := rp.pAddr, rp.proxy
	var sends atomic.Int64
	var failedOver, failedBack atomic.Bool
	var h harnessErrors
	ctx := context.Background()
	f.behindWithGate(cfg, func(origin http.Handler) http.Handler {
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
	}, browser.Options{DriverDir: harness.DriverDir(t)}, gateCfg)
	texts := []string{"m1", "m2", "m3", "m4", "m5"}
	for _, text := range texts {
		f.enqueue(f.newMessage("creator-a", text))
	}
	ok := f.runUntil(120*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	h.fatalIfAny(t)
	if !failedOver.Load() || !failedBack.Load() {
		t.Fatalf("harness: failover %t, failback %t", failedOver.Load(), failedBack.Load())
	}
	got := f.site.Texts("creator-a")
	if !ok || strings.Join(got, ",") != strings.Join(texts, ",") {
		t.Fatalf("ok %t: the site has %q", ok, got)
	}
	if n := f.site.MaxInWindow(10 * time.Second)["creator-a"]; n > 2 {
		t.Fatalf("%d sends in one 10 s window at the site (limit 2)\n%s", n, f.site.Summary([]string{"creator-a"}, 2, 10*time.Second))
	}
}
