// Issue 22, eighth review (fresh reviewer H): attacks that held.

package scraper_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// pagingFrontStaleClickPageThen500 serves every chat page with only its
// latest n messages; the first chat page after the fourth send (the page
// the fifth is clicked on) comes from a replica one commit behind, and
// the fifth send is answered 500 by the front itself (nothing recorded).
func pagingFrontStaleClickPageThen500(n int) func(http.Handler) http.Handler {
	var sends atomic.Int64
	var stale atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				switch sends.Add(1) {
				case 4:
					origin.ServeHTTP(w, r)
					stale.Store(true)
				case 5:
					http.Error(w, "database unavailable", http.StatusInternalServerError)
				default:
					origin.ServeHTTP(w, r)
				}
				return
			}
			if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				origin.ServeHTTP(w, r)
				return
			}
			serveRewritten(w, r, origin, func(body string) string { return latestOf(body, n, stale.CompareAndSwap(true, false)) })
		})
	}
}

// TestRev22HHeldAStaleClickPageOnAChatShowingItsLatestMessagesLosesNothing:
//
// Promise (a), review G's lost message on a paging chat: "thanks babe"
// twice in a row on a chat page showing its latest 3; the page the second
// is clicked on lags one commit (it shows the window before the first
// copy), then that send gets a 500. staleClickPage (the last sent
// message's mark judged NotSent on that page) refuses the stale page, and
// the fan gets all five once.
func TestRev22HHeldAStaleClickPageOnAChatShowingItsLatestMessagesLosesNothing(t *testing.T) {
	t.Parallel()
	// GIVEN five messages of creator-a to one fan, the last two identical
	cfg := shortHorizon()
	f := setup(t, cfg)
	f.behind(cfg, pagingFrontStaleClickPageThen500(3))
	f.enqueue(f.newMessage("creator-a", "hello"), f.newMessage("creator-a", "a"), f.newMessage("creator-a", "b"),
		f.newMessage("creator-a", "thanks babe"), f.newMessage("creator-a", "thanks babe"))
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has all five, once each
	if got := f.site.Texts("creator-a"); !ok || len(got) != 5 {
		t.Fatalf("ok %t: the fan has %d of 5 messages %q (send requests %d)", ok, len(got), got, f.site.SendRequests())
	}
	if !strings.Contains(f.logs.String(), "does not show the message sent to this fan last") {
		t.Fatalf("the stale click page was not seen (the attack did not happen)")
	}
}
