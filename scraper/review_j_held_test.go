package scraper_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/message"
)

// Issue 22, tenth review (fresh reviewer J): attacks that held.

// staleFan2PageThen500 serves the first chat page of fan-2 after the third
// send from a replica one commit behind and answers the fourth send 500
// itself (nothing recorded).
func staleFan2PageThen500() func(http.Handler) http.Handler {
	var sends atomic.Int64
	var stale atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				switch sends.Add(1) {
				case 3:
					origin.ServeHTTP(w, r)
					stale.Store(true)
				case 4:
					http.Error(w, "database unavailable", http.StatusInternalServerError)
				default:
					origin.ServeHTTP(w, r)
				}
				return
			}
			if r.Method != http.MethodGet || r.URL.Path != "/my/chats/chat/fan-2" || !stale.CompareAndSwap(true, false) {
				origin.ServeHTTP(w, r)
				return
			}
			oneCommitBehind(w, r, origin)
		})
	}
}

// TestRev22JHeldIdenticalTextsToDifferentFansOnAStaleClickPage:
//
// Promise (a). One creator sends "thanks babe" to fan-2 (m0), a filler
// and "thanks babe" to fan-1 (m1), then "thanks babe" to fan-2 again
// (m2). m2's click page is one commit behind (m0 not shown) and its send
// gets a 500 (nothing recorded). The last-sent record is per creator and
// fan (lastsent:<creator>/<fan>): fan-2's is m0, which the stale page
// does not show, so the click waits (staleClickPage) and m1's identical
// text to fan-1 plays no part. Held: all four delivered, m2 once.
func TestRev22JHeldIdenticalTextsToDifferentFansOnAStaleClickPage(t *testing.T) {
	t.Parallel()
	cfg := shortHorizon()
	f := setup(t, cfg)
	f.behind(cfg, staleFan2PageThen500())
	to := func(fan, text string) message.Message {
		m, err := message.New("user-creator-a", fan, text, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		m.CreatorID = "creator-a"
		return m
	}
	f.enqueue(to("fan-2", "thanks babe"), to("fan-1", "hello"), to("fan-1", "thanks babe"), to("fan-2", "thanks babe"))
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	var fan2 int
	for _, s := range f.site.Sent() {
		if s.Fan == "fan-2" {
			fan2++
		}
	}
	if got := f.site.Texts("creator-a"); !ok || len(got) != 4 || fan2 != 2 {
		t.Fatalf("ok %t: the site has %q, %d to fan-2 (want 4, 2)", ok, got, fan2)
	}
	if !strings.Contains(f.logs.String(), "does not show the message sent to this fan last") {
		t.Fatal("the stale click page was not met: the attack did not run")
	}
}
