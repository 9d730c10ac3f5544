package scraper_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 22, tenth review (fresh reviewer J): the check of a click's page
// against the last message sent to the fan (Processor.staleClickPage)
// after a wait longer than LATE_COMMIT_HORIZON.

// thirdSend429ThenStalePageThen500 answers the third send request 429
// with Retry-After retryAfter (nothing recorded), serves the next chat
// page (the page the fourth send is clicked on) from a replica one commit
// behind (the chat's last message not shown yet), and answers the fourth
// send 500 itself (nothing recorded). Every other page is fresh.
func thirdSend429ThenStalePageThen500(retryAfter time.Duration) func(http.Handler) http.Handler {
	var sends atomic.Int64
	var stale atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				switch sends.Add(1) {
				case 3:
					stale.Store(true)
					w.Header().Set("Retry-After", strings.TrimSuffix(retryAfter.String(), "s"))
					http.Error(w, `{"error":"slow down"}`, http.StatusTooManyRequests)
				case 4:
					http.Error(w, "database unavailable", http.StatusInternalServerError)
				default:
					origin.ServeHTTP(w, r)
				}
				return
			}
			if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/my/chats/chat/") || !stale.CompareAndSwap(true, false) {
				origin.ServeHTTP(w, r)
				return
			}
			oneCommitBehind(w, r, origin)
		})
	}
}

// TestRev22JBStaleClickPageAfterAWaitLongerThanTheHorizonDoesNotLoseTheMessage:
//
// Promise (a): no message is lost; an unknown send outcome is settled
// only by a read-back that can tell.
//
// Fault: "thanks babe" is sent twice in a row (m1, m2; identical texts
// are distinct messages). m2's first send is refused 429 with a
// Retry-After longer than LATE_COMMIT_HORIZON (nothing sent: the message
// waits, as it would behind any outage, pause or gate denial longer than
// the horizon). The page m2 is then clicked on comes from a replica one
// commit behind (m1 not shown yet), and that send gets a 500 (nothing
// recorded). The read-back (fresh) shows m1's copy after the click's
// anchor (m0) and settles m2 sent: the fan has the text once, m2 is lost.
// This is review 22 G's TestRev22GFAStaleClickPageWithIdenticalTexts...,
// with a wait before the click.
//
// Code path: scraper/processor_lastsent.go staleClickPage lets every
// click through once LateCommitHorizon has passed since the last message
// to the fan was found sent (`p.now().Sub(ls.At) > LateCommitHorizon`,
// and the record itself lives only LateCommitHorizon+1 min:
// rememberSent). Any wait longer than the horizon between m1's send and
// m2's click (a 429, an outage, a paused session, and every re-click
// after an unanswered send, which by design comes only after the
// horizon: mayStillLand) removes the protection, and
// onlyfans/anchor.go JudgeChat then takes m1's copy for m2's.
// The control (Retry-After shorter than the horizon) delivers all three.
//
// Fixed: the record lives for the ledger's retention and the check has
// no time bound; a page not showing it waits while consecutive receives
// see it so for less than CHAT_FAULT_PATIENCE (Ledger.StalePageSince),
// then is taken for a deleted message. Suggested then: keep the last-sent record (and its check) until a later
// message to the fan is found sent or not sent, not for a fixed horizon
// after the send (the deleted-message case it was bounded for can end
// the hold on a read-back that shows the record's anchor with nothing
// after it, or on a patience counted from the first stale sighting, as
// brokenFanChat and behind do); and check a re-click's page against the
// message's own previous mark (the page must line up with it, not show
// an earlier state).
func TestRev22JBStaleClickPageAfterAWaitLongerThanTheHorizonDoesNotLoseTheMessage(t *testing.T) {
	t.Parallel()
	cfg := shortHorizon() // LateCommitHorizon 4 s
	for name, retryAfter := range map[string]time.Duration{
		"429 longer than the horizon":            6 * time.Second,
		"control (429 shorter than the horizon)": time.Second,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// GIVEN three messages of creator-a to one fan, the last two
			// identical
			f := setup(t, cfg)
			f.behind(cfg, thirdSend429ThenStalePageThen500(retryAfter))
			f.enqueue(f.newMessage("creator-a", "hello"), f.newMessage("creator-a", "thanks babe"), f.newMessage("creator-a", "thanks babe"))
			// WHEN the scraper runs until the queue is empty
			ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN the fan has all three
			if got := f.site.Texts("creator-a"); !ok || len(got) != 3 {
				t.Log(linesWith(f.logs.String(), `"msg":"message processed"`))
				t.Fatalf("ok %t: the fan has %d of 3 messages %q (send requests %d)", ok, len(got), got, f.site.SendRequests())
			}
		})
	}
}
