//go:build reviewfindings

package scraper_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper"
)

// TestRev22ZAEmptyPageAtTheClickDeadLettersAnUnsentMessageOnALatestOnlySite
// (review 22 Z, finding A):
//
// Promise (c): an outage (a page rendering wrong, a 5xx) never
// dead-letters a message; only answers about that very message count as
// its failures. Promise (a): every accepted message reaches its fan (never
// lost).
//
// Fault (steps): the default (document) profile; the site shows only a
// chat's latest 3 messages (ShowLatest(3), as the real app does, older
// ones on scroll: never its start).
//  1. creator-a chatted with fan-1 by hand (4 messages from the phone
//     app, outside the pipeline: no last-sent record). None has the text
//     of the pipeline's message.
//  2. While the pipeline's message is processed the history's read path
//     is degraded (W C's / Y B's fault: the history list with its end
//     marker and no message in it) up to the send request.
//  3. The send request meets a gateway 502 that did NOT commit; the read
//     path is healthy again from that request on.
//
// Why: the click's mark is taken on the degraded page: Count 0, not
// Complete (a latest-only page never shows its start).
// staleClickPage (processor_lastsent.go:145, `if !ls.Found { return nil }`)
// vouches for the page only against a last-sent record, and there is
// none, so the click is made. unknownClick (processor_send.go:185) reads
// back the healthy chat: 3 hand-written messages, no copy, no start.
// Mark.judgeFromStart (scraper/onlyfans/anchor.go:196-197, the default
// case: "shows messages but neither a copy nor its start now: the copy
// may have scrolled out") makes it Unknown, not Behind and not Empty, so
// undecided (processor_readback.go:149) counts it as the message's own
// failure (ClassOutcomeUnknown) at once, horizon or not; every later
// receive's recover reads the same chat, and after MaxFailures the
// message is dead-lettered outcome_unknown. It was never sent: an outage
// (a degraded page plus a 502) lost it, and dead-lettered it as its own
// failure. Unlike Y B this needs no copy of the text anywhere: any fan
// the creator chatted with by hand for more than a page's window.
//
// A correct system does not anchor a click on a page it cannot tell from
// a page rendering an empty history (a chat that showed nothing at the
// click is then read against nothing), or treats a read-back that cannot
// line up with such a mark as the outage's uncounted wait (as Empty is):
// fan-1 gets the message exactly once, nothing dead-lettered.
func TestRev22ZAEmptyPageAtTheClickDeadLettersAnUnsentMessageOnALatestOnlySite(t *testing.T) {
	const text = "are you free tonight?"
	cfg := shortHorizon()
	f := setup(t, cfg)
	f.site.ShowLatest(3)
	for _, byHand := range []string{"hey", "how was your day", "lol", "good night"} {
		f.sendAsCreator("creator-a", "fan-1", byHand)
	}
	f.site.InjectFaults(fakesite.Fault{Status: 502}) // not committed, answered 502
	var posts, degradedPages atomic.Int64
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				posts.Add(1)
				origin.ServeHTTP(w, r)
				return
			}
			if r.Method == http.MethodGet && r.URL.Path == "/my/chats/chat/fan-1" && posts.Load() == 0 {
				degradedPages.Add(1)
				serveRewritten(w, r, origin, func(page string) string { return chatMessage.ReplaceAllString(page, "") })
				return
			}
			if r.Method == http.MethodGet && r.URL.Path == "/api2/v2/chats/fan-1/messages" && posts.Load() == 0 {
				degradedPages.Add(1)
				serveRewritten(w, r, origin, func(page string) string { return jsonMessages.ReplaceAllString(page, `"messages":null`) })
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	m := f.newMessage("creator-a", text)
	f.enqueue(m)
	ok := f.runUntil(60*time.Second, func() bool {
		return f.queueCount(f.queues.Workflows.URL) == 0 && posts.Load() > 0
	})
	copies := 0
	for _, s := range f.site.Sent() {
		if s.Fan == "fan-1" && s.Text == text {
			copies++
		}
	}
	dlq := f.dlq()
	var reasons []string
	for _, d := range dlq {
		reasons = append(reasons, aws.ToString(d.MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if !ok || copies != 1 || len(dlq) != 0 {
		t.Fatalf("ok %t: fan-1 has %d copies of %q (want 1; %d send requests, %d degraded pages), dead-lettered %q; the scraper's word:\n%s",
			ok, copies, text, f.site.SendRequests(), degradedPages.Load(), reasons,
			linesWith(f.logs.String(), "sent:", "not sent", "did not send", "sending again", "unknown", "dead-letter", "message processed", "land"))
	}
}
