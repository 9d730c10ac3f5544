// Findings of issue 22's third review (fresh reviewer), fixed: a send
// request that got no answer may still land at the origin until
// LATE_COMMIT_HORIZON after its click (docs/design.md section 8).

package scraper_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
)

// commitAfterTheClientLeft holds the first send request at a front (an
// origin's overloaded request queue) until the client gave up, and only
// later hands it to the origin, which commits it: a real origin does not
// stop processing when its client disconnects. done is closed once the
// origin committed it.
func commitAfterTheClientLeft(later time.Duration, done chan struct{}) func(http.Handler) http.Handler {
	var taken atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") || !taken.CompareAndSwap(false, true) {
				origin.ServeHTTP(w, r)
				return
			}
			commitLater(origin, r, later, done)
			select { // no answer: the client times out and leaves
			case <-r.Context().Done():
			case <-time.After(later):
			}
		})
	}
}

// commitLater hands the send request r to origin after later, as an
// origin's queue does whatever its client did meanwhile; done is closed
// once the origin committed it.
func commitLater(origin http.Handler, r *http.Request, later time.Duration, done chan struct{}) {
	body, _ := io.ReadAll(r.Body)
	queued := r.Clone(context.Background())
	queued.Body = io.NopCloser(bytes.NewReader(body))
	go func() {
		defer close(done)
		time.Sleep(later)
		origin.ServeHTTP(httptest.NewRecorder(), queued)
	}()
}

// TestRev22CAHangingSiteThatCommitsAfterTheClientLeftGetsTheMessageOnce:
//
// Promise: every queued message reaches the site exactly once; a hanging
// site is an outage whose unknown clicks are settled only by a read-back.
//
// Fault: the site hangs (an overloaded origin queueing requests): the send
// request gets no answer, the scraper's request times out, and the origin
// processes and commits the queued request later, after the read-back's
// settle (production: 30 s response timeout + 10 s settle; an origin's
// backlog in an incident easily holds a request longer).
//
// Observed: the read-back finds no copy yet, settles "not sent" and the
// message is clicked again in-process (ServerAttempts); the second send is
// answered, and then the first, still queued at the origin, commits: the
// fan has the message twice.
//
// A correct system does not take "not in the chat yet" as "not sent" for
// a request that may still be in flight at the origin (no answer at all):
// it keeps the attempt mark and reads back again later (a redelivery with a
// growing delay), or clicks again only once the request can no longer land.
func TestRev22CAHangingSiteThatCommitsAfterTheClientLeftGetsTheMessageOnce(t *testing.T) {
	t.Parallel()
	// GIVEN a front whose first send request is answered never and
	// committed by the origin 12 s later
	cfg := testConfig()
	f := setup(t, cfg)
	committed := make(chan struct{})
	f.behind(cfg, commitAfterTheClientLeft(12*time.Second, committed))
	m := f.newMessage("creator-a", "sent into a hanging origin")
	f.enqueue(m)
	// WHEN the scraper runs until the queue is empty and the held request
	// has landed
	ok := f.runUntil(60*time.Second, func() bool {
		select {
		case <-committed:
			return f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	// THEN the fan has it once
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t: the fan has %q (%d send requests at the origin)\n%s", ok, got, f.site.SendRequests(), f.logs)
	}
}

// TestAnUnansweredSendThatLandsBeforeTheHorizonKeepsTheCreatorsNextSendOutOfItsWindow:
//
// Promise: never more than the limit per window per creator at the site;
// the gate is charged for a request that got no answer for as long as it
// may land (LateCommitHorizon after its click), not from its client's
// give-up.
//
// Fault: a gate of 1 send per 10 s; the first send request hangs (no
// answer, the client times out after 1.5 s) and the origin commits it 12 s
// later, inside the horizon (15 s in tests). Restamped at the give-up, its
// approval would leave the window at about 11.7 s and the creator's next
// message be admitted as soon as the read-back found the first one (about
// 15 s): two sends some 4 s apart at the site.
func TestAnUnansweredSendThatLandsBeforeTheHorizonKeepsTheCreatorsNextSendOutOfItsWindow(t *testing.T) {
	t.Parallel()
	// GIVEN a gate of 1 per 10 s and a front whose first send request is
	// answered never and committed by the origin 12 s later
	gateCfg := ratelimit.Config{Limit: 1, Window: 10 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"}
	cfg := testConfig()
	f := setupWithGate(t, cfg, gateCfg)
	committed := make(chan struct{})
	f.behindGate(cfg, gateCfg, commitAfterTheClientLeft(12*time.Second, committed))
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
	// THEN each is at the site once, in order, and no 10 s window held two
	got := f.site.Texts("creator-a")
	if !ok || len(got) != 2 || got[0] != "into a hanging origin" || got[1] != "the next one" {
		t.Fatalf("ok %t: the site has %q\n%s", ok, got, f.logs)
	}
	if n := f.site.MaxInWindow(10 * time.Second)["creator-a"]; n > 1 {
		t.Fatalf("%d sends in one 10 s window at the site (limit 1)\n%s", n, f.site.Summary([]string{"creator-a"}, 1, 10*time.Second))
	}
}
