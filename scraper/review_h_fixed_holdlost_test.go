// Issue 22, eighth review (fresh reviewer H): the gate's hold of an
// unanswered send is one Redis call at the end of its processing.

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

// pauseRedisAsTheClientLeaves wraps front: when the first send request's
// client gives up (the scraper's request timed out), Redis pauses every
// client for pause (CLIENT PAUSE: what a failover's switch, or a manual
// FAILOVER, does to a primary); 0 pauses nothing (the control).
func (f *fixture) pauseRedisAsTheClientLeaves(pause time.Duration, front func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	var taken atomic.Bool
	return func(origin http.Handler) http.Handler {
		inner := front(origin)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if pause > 0 && r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && taken.CompareAndSwap(false, true) {
				go func() {
					<-r.Context().Done()
					if err := f.redis.Client().Do(context.Background(), "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
						f.t.Errorf("CLIENT PAUSE: %v", err)
					}
				}()
			}
			inner.ServeHTTP(w, r)
		})
	}
}

// TestRev22HDAnUnansweredSendStaysChargedWhenRedisPausesAtItsEnd:
//
// Promise (b): never more than the limit per window per creator at the
// site, counting late commits.
//
// review C's case (a gate of 1 per 10 s; the first send request hangs, the
// client gives up after 1.5 s and the origin commits it 12 s later, inside
// the horizon), with Redis pausing its clients for 4 s as the client gives
// up (a failover's pause; nothing is lost, the same server goes on). The
// gate's Hold of that approval (processor_send.go attempt -> hold, one
// call bounded by restampTimeout 2 s) fails, logged only ("send gate
// approval of an unanswered send not held"), and nothing holds it later:
// the redelivery that finds the send still unsettled (recover ->
// mayStillLand) and the one that finds it landed charge nothing. The
// approval stays at its decision (t≈0), leaves the 10.2 s span, and the
// creator's next message is admitted as soon as the read-back finds the
// first one (about 15 s): two sends about 3 s apart at the site. The
// control (no pause) holds.
func TestRev22HDAnUnansweredSendStaysChargedWhenRedisPausesAtItsEnd(t *testing.T) {
	t.Parallel()
	for name, pause := range map[string]time.Duration{"Redis pauses 4 s as the client leaves": 4 * time.Second, "control (no pause)": 0} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// GIVEN a gate of 1 per 10 s and a front whose first send
			// request is answered never and committed by the origin 12 s
			// later
			gateCfg := ratelimit.Config{Limit: 1, Window: 10 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"}
			cfg := testConfig()
			f := setupWithGate(t, cfg, gateCfg)
			committed := make(chan struct{})
			f.behindGate(cfg, gateCfg, f.pauseRedisAsTheClientLeaves(pause, commitAfterTheClientLeft(12*time.Second, committed)))
			f.enqueue(f.newMessage("creator-a", "into a hanging origin"))
			f.enqueue(f.newMessage("creator-a", "the next one"))
			// WHEN the scraper drains both and the held request has landed
			ok := f.runUntil(90*time.Second, func() bool {
				select {
				case <-committed:
					return len(f.site.Texts("creator-a")) >= 2 && f.queueCount(f.queues.Workflows.URL) == 0
				default:
					return false
				}
			})
			// THEN both are sent once, never two in one window
			got := f.site.Texts("creator-a")
			if !ok || len(got) != 2 {
				t.Fatalf("ok %t: the site has %q", ok, got)
			}
			if n := f.site.MaxInWindow(10 * time.Second)["creator-a"]; n > 1 {
				t.Fatalf("%d sends in one 10 s window at the site (limit 1; hold lost %t)\n%s", n,
					strings.Contains(f.logs.String(), "approval of an unanswered send not held"), f.site.Summary([]string{"creator-a"}, 1, 10*time.Second))
			}
		})
	}
}
