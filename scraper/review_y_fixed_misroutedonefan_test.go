package scraper_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
)

// TestRev22YAOneFansMisroutedChatIsDeadLettered (review 22 Y, finding A):
//
// Promise (c): outages (a page rendering wrong) never dead-letter a
// message; only answers about that very message count as its failures.
// (a): every accepted message reaches its fan (never lost). docs/scraper.md
// (profile table, chatIdentity) and docs/operations.md say a page showing
// another fan's chat at this fan's address "is the site's outage" and "the
// message waits as an outage".
//
// Fault (steps): the default (document) profile, a full-history site (and
// the single-page app's, SCRAPER_TEST_PROFILE=spa: its history fetch
// misrouted the same way).
//  1. A front (a CDN / router with one bad entry) serves fan-9's chat page
//     at fan-1's chat address only, for 25 s: the page names fan-9
//     (#chat-pane data-fan="fan-9"). Every other address, the probe chat
//     (/my/chats/chat/onlyfans) included, is served right.
//  2. The first message to fan-1 is queued. Nothing else goes wrong; the
//     front is right again after 25 s.
//
// Why: openChat (scraper/onlyfans/sender_click.go:63-66) wraps
// confirmChat's "the page shows other:fan-9" as ErrSiteDown *and*
// ErrChatUnusable (sender_inapp.go:82, `%w: the page shows %v`), so
// afterClick (processor_send.go:167, the ErrChatUnusable case before the
// ErrSiteDown one; the read-back's unreadable, processor_readback.go:164,
// alike) hands it to chatFault. The probe chat is fine and the
// fan's chat, opened again (stillBroken), names fan-9 again
// (ErrChatUnusable), so brokenFanChat (processor_chatfault.go:46, 88) takes
// the misroute for "this fan's chat alone is broken": past
// CHAT_FAULT_PATIENCE it counts a chat_unusable failure on every receive,
// and after MAX_FAILURES the message is dead-lettered while the site is
// merely serving the wrong page. A deleted account or a corrupt thread
// never renders *another fan's* chat; a page naming another fan is proof
// of the site's (router's, cache's) fault, not of this fan's chat. The X A
// fix relied on the probe chat being misrouted too (its doc comment: "the
// probe chat, misrouted as well, makes it an uncounted wait").
//
// A correct system treats a page that names another fan as the site's
// outage whatever the probe chat shows (ErrSiteDown without
// ErrChatUnusable, or a chatFault that never counts a misroute): the
// message waits uncounted and reaches fan-1 once when the front is right
// again; nothing dead-lettered, nothing sent to fan-9.
//
// Fixed: confirmChat (scraper/onlyfans/sender_inapp.go) answers a page
// naming another fan with ErrOtherFansChat, never ErrChatUnusable, and
// openChat adds ErrSiteDown: afterClick and unreadable take it for the
// site's outage, an uncounted wait, whatever the probe chat shows.
func TestRev22YAOneFansMisroutedChatIsDeadLettered(t *testing.T) {
	cfg := testConfig()
	f := setup(t, cfg)
	var until atomic.Int64
	until.Store(time.Now().Add(25 * time.Second).UnixNano())
	var misrouted atomic.Int64
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && time.Now().UnixNano() < until.Load() {
				if misrouteFan1(r) {
					misrouted.Add(1)
				}
			}
			origin.ServeHTTP(w, r)
		})
	})
	m := f.newMessage("creator-a", "only for fan one, and not lost")
	f.enqueue(m)
	ok := f.runUntil(60*time.Second, func() bool {
		return f.queueCount(f.queues.Workflows.URL) == 0 && time.Now().UnixNano() > until.Load()
	})
	var toFan1, toOthers []string
	for _, s := range f.site.Sent() {
		if s.Fan == "fan-1" {
			toFan1 = append(toFan1, s.Text)
		} else {
			toOthers = append(toOthers, s.Fan+": "+s.Text)
		}
	}
	dlq := f.dlq()
	reasons := failureReasons(dlq)
	if !ok || len(toFan1) != 1 || len(toOthers) != 0 || len(dlq) != 0 {
		t.Fatalf("ok %t: fan-1 has %q, others %q (%d misrouted chat loads), dead-lettered %q; the scraper's word:\n%s",
			ok, toFan1, toOthers, misrouted.Load(), reasons,
			linesWith(f.logs.String(), "other:", "alone", "dead-letter", "message processed", "counted"))
	}
}

// TestRev22YAOneFansMisroutedChatAfterACommitted502DeadLettersASentMessage
// (review 22 Y, finding A, on the read-back path):
//
// Promise (c) as above; (a): a dead-lettered message is one the fan did
// not get (a redrive of this one sends it twice).
//
// Fault (steps): the default (document) profile, a full-history site.
//  1. The first message to fan-1 meets a gateway 502 after its origin
//     committed it: fan-1 has it.
//  2. From that answer on, for 25 s, a front serves fan-9's chat page (it
//     names fan-9) at fan-1's chat address only; the probe chat and
//     every other address are served right.
//
// Why: the read-back (processor_send.go unknownClick → readBack →
// Sender.ReadBack → openChat) fails confirmChat with ErrSiteDown and
// ErrChatUnusable; unreadable (processor_readback.go:164) sends it to
// chatFault, the probe chat works, so brokenFanChat counts chat_unusable
// failures past CHAT_FAULT_PATIENCE and dead-letters the message, which
// fan-1 has. A correct system keeps the mark and waits, uncounted, while
// the site serves another fan's page, then reads fan-1's chat back: sent,
// one copy, nothing dead-lettered.
//
// Fixed: as above (ErrOtherFansChat: unreadable's outage wait, the mark
// kept).
func TestRev22YAOneFansMisroutedChatAfterACommitted502DeadLettersASentMessage(t *testing.T) {
	cfg := testConfig()
	f := setup(t, cfg)
	f.site.InjectFaults(fakesite.Fault{Status: 502, Commit: true}) // committed, answered 502
	var until atomic.Int64
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && r.URL.Path == "/api2/v2/chats/fan-1/messages" {
				origin.ServeHTTP(w, r)
				until.CompareAndSwap(0, time.Now().Add(25*time.Second).UnixNano())
				return
			}
			if r.Method == http.MethodGet && time.Now().UnixNano() < until.Load() {
				_ = misrouteFan1(r)
			}
			origin.ServeHTTP(w, r)
		})
	})
	m := f.newMessage("creator-a", "sent once, and kept so")
	f.enqueue(m)
	ok := f.runUntil(60*time.Second, func() bool {
		return f.queueCount(f.queues.Workflows.URL) == 0 && until.Load() != 0 && time.Now().UnixNano() > until.Load()
	})
	toFan1 := f.sentTo("fan-1")
	dlq := f.dlq()
	reasons := failureReasons(dlq)
	if !ok || len(toFan1) != 1 || len(dlq) != 0 {
		t.Fatalf("ok %t: fan-1 has %q, dead-lettered %q; the scraper's word:\n%s",
			ok, toFan1, reasons, linesWith(f.logs.String(), "other:", "alone", "dead-letter", "message processed", "counted"))
	}
}

// misrouteFan1 points a request for fan-1's chat (the chat document, or
// the single-page app's history fetch) at fan-9's, and reports whether
// it was one.
func misrouteFan1(r *http.Request) bool {
	switch r.URL.Path {
	case "/my/chats/chat/fan-1":
		r.URL.Path = "/my/chats/chat/fan-9"
	case "/api2/v2/chats/fan-1/messages":
		r.URL.Path = "/api2/v2/chats/fan-9/messages"
	default:
		return false
	}
	return true
}
