//go:build reviewfindings

package scraper_test

import (
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper"
)

// jsonMessages is the app's history fetch's list of messages.
var jsonMessages = regexp.MustCompile(`"messages":(\[[^\]]*\]|null)`)

// TestRev22YBEmptyHistoryAtTheClickLosesAMessageTheCreatorOnceWroteByHand
// (review 22 Y, finding B):
//
// Promise (a): every accepted message reaches its fan (never lost); (c):
// an outage (a page rendering wrong, a 5xx) is never read as the
// message's outcome.
//
// Fault (steps): the default (document) profile, a full-history site
// (and the single-page app's, SCRAPER_TEST_PROFILE=spa: its history
// fetch rewritten the same way).
//  1. Long ago creator-a wrote "thank you so much" to fan-1 by hand (the
//     app on the phone, outside the pipeline: no last-sent record).
//  2. The pipeline's first message to fan-1 has that very text.
//  3. While it is processed the history's read path is degraded (W C's
//     fault, X C's page: the history list with its start and end markers
//     and no message in it) up to the send request.
//  4. The send request meets a gateway 502 that did NOT commit; the read
//     path is healthy again from that request on.
//
// Why: the click's mark is taken on the degraded page: Count 0, Complete
// (the start marker shown). staleClickPage (processor_lastsent.go:145,
// `if !ls.Found { return nil }`) vouches for a page only against a last-sent record, and there is
// none for a text written by hand, so the click is made on the empty
// page. The read-back (processor_send.go:191 unknownClick → readBack)
// sees the healthy chat: the hand-written copy, complete. The mark showed
// nothing, so Mark.judgeFromStart (scraper/onlyfans/anchor.go:188-189,
// `case v.Identical > 0: Sent`) takes any copy shown now for this click's
// and settles it sent: the message never reached fan-1 and is deleted
// from the queue. An empty page at the click is exactly what b8aa34d
// says cannot be trusted at a read-back ("not sent, or a page rendering
// an empty history"), yet at the click it is trusted as the anchor.
//
// A correct system does not anchor a click on a chat page it cannot
// tell from a page rendering an empty history, or does not read a copy
// that may predate the click as this click's (e.g. a chat showing
// nothing at the click is clicked only once seen so for the patience, or
// a copy found after such a click is Unknown unless the site's id or the
// send's answer ties it to this click): fan-1 gets the message (two
// copies of the text in the chat: the hand-written one and the
// pipeline's), nothing dead-lettered.
func TestRev22YBEmptyHistoryAtTheClickLosesAMessageTheCreatorOnceWroteByHand(t *testing.T) {
	const text = "thank you so much"
	cfg := shortHorizon()
	f := setup(t, cfg)
	f.sendAsCreator("creator-a", "fan-1", text)      // by hand, long ago
	f.site.InjectFaults(fakesite.Fault{Status: 502}) // not committed, answered 502
	var posts atomic.Int64
	var degradedPages atomic.Int64
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				posts.Add(1)
				origin.ServeHTTP(w, r)
				return
			}
			if r.Method == http.MethodGet && r.URL.Path == "/my/chats/chat/fan-1" && posts.Load() == 0 {
				// The history's read path answers nothing: an empty list.
				degradedPages.Add(1)
				serveRewritten(w, r, origin, func(page string) string { return chatMessage.ReplaceAllString(page, "") })
				return
			}
			if r.Method == http.MethodGet && r.URL.Path == "/api2/v2/chats/fan-1/messages" && posts.Load() == 0 {
				// The app's history fetch (SCRAPER_TEST_PROFILE=spa): the
				// same empty list, its start flag kept.
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
	if !ok || copies != 2 || len(dlq) != 0 {
		t.Fatalf("ok %t: fan-1's chat holds %d copies of %q (want 2: the hand-written one and the pipeline's; %d send requests, %d degraded pages), dead-lettered %q; the scraper's word:\n%s",
			ok, copies, text, f.site.SendRequests(), degradedPages.Load(), reasons,
			linesWith(f.logs.String(), "sent:", "not sent", "did not send", "sending again", "unknown", "dead-letter", "message processed", "land"))
	}
}
