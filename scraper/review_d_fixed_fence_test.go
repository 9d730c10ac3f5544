// Findings of issue 22's fourth review (fresh reviewer D), fixed: an emptied
// Redis fences the send gate for a span + LATE_COMMIT_HORIZON, past every
// approval it held.

package scraper_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
)

// flushAfterTheHangingClick runs next and, at the first chat page load
// after the first send request (the read-back of an unanswered click, so
// after the processor held its gate approval), empties Redis once and lets
// another creator's send decision through the gate (another task, another
// creator, the same second: what writes the gate's new fence).
func flushAfterTheHangingClick(t *testing.T, f *fixture, gateCfg ratelimit.Config, next func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	var clicked, flushed atomic.Bool
	return func(origin http.Handler) http.Handler {
		inner := next(origin)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				clicked.Store(true)
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") && clicked.Load() && flushed.CompareAndSwap(false, true) {
				rdb := f.redis.Client()
				if err := rdb.FlushAll(context.Background()).Err(); err != nil {
					t.Error(err)
				}
				other, err := ratelimit.New(rdb, gateCfg)
				if err == nil {
					_, err = other.Decide(context.Background(), []ratelimit.Request{{Key: "creator-other", ID: "other-send"}})
				}
				if err != nil {
					t.Error(err)
				}
			}
			inner.ServeHTTP(w, r)
		})
	}
}

// TestRev22DCRedisEmptiedRightAfterAnUnansweredClickLetsTheCreatorOverTheLimit:
//
// Promise (b): the site never records more than the gate's limit per
// creator per window.
//
// Fault: a gate of 2 sends per 6 s; creator-a's first send hangs (no
// answer, the client gives up after 1.5 s) and its origin commits it 13 s
// after the click, inside the horizon (15 s). Right after the click (its
// approval held until click + 15 s) Redis is emptied (a failover to an
// empty replica, a restart without persistence), and another creator's
// send decision that second writes the gate's new fence.
//
// Sequence: the fence holds every send for one span (6.2 s), until about
// click + 8 s; the held approval is gone with the rest of Redis. The
// message's attempt mark comes back from the mark store, its read-back
// waits out the horizon and finds the copy committed at click + 13 s:
// already sent. Its creator's next two messages are then admitted by an
// empty log at about click + 16 s: the site has three sends in 6 s. The
// fence's bound (docs/design.md section 3: "every approval the lost Redis
// knew happened before the fence was written, so it is at least one
// window old before anything is approved again") does not hold for an
// approval held up to LATE_COMMIT_HORIZON past its decision.
func TestRev22DCRedisEmptiedRightAfterAnUnansweredClickLetsTheCreatorOverTheLimit(t *testing.T) {
	t.Parallel()
	// GIVEN a gate of 2 per 6 s, a front whose first send request is never
	// answered and committed 13 s later, and Redis emptied right after
	// that click
	gateCfg := ratelimit.Config{Limit: 2, Window: 6 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"}
	cfg := testConfig()
	f := setupWithGate(t, cfg, gateCfg)
	committed := make(chan struct{})
	f.behindGate(cfg, gateCfg, flushAfterTheHangingClick(t, f, gateCfg, commitAfterTheClientLeft(13*time.Second, committed)))
	for _, text := range []string{"into a hanging origin", "the next one", "and one more"} {
		f.enqueue(f.newMessage("creator-a", text))
	}
	// WHEN the scraper drains them and the held request has landed
	ok := f.runUntil(90*time.Second, func() bool {
		select {
		case <-committed:
			return len(f.site.Texts("creator-a")) >= 3 && f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	// THEN each is at the site once, in order, and no 6 s window held more
	// than 2
	got := f.site.Texts("creator-a")
	if !ok || strings.Join(got, ",") != "into a hanging origin,the next one,and one more" {
		t.Fatalf("ok %t: the site has %q\n%s", ok, got, f.logs)
	}
	if n := f.site.MaxInWindow(6 * time.Second)["creator-a"]; n > 2 {
		t.Fatalf("%d sends in one 6 s window at the site (limit 2)\n%s", n, f.site.Summary([]string{"creator-a"}, 2, 6*time.Second))
	}
}
