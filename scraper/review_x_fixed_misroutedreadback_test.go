package scraper_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
)

// TestRev22XAMisroutedReadBackSendsTheMessageTwice (review 22 X, finding A):
//
// Promise (a): every accepted message reaches its fan exactly once (never
// twice); (c): the site's outage (a page rendering wrong: another fan's
// chat at this fan's address) is never read as the message's outcome.
//
// Fault (steps): the default (document) profile, a full-history site.
//  1. The first message to fan-1 meets a gateway 502 after its origin
//     committed it: fan-1 has it.
//  2. From that answer on, for 12 s, the site's router serves fan-9's chat
//     (empty, showing its start) at every chat address (MisrouteChats,
//     the W B fault, now on the read path rather than the click).
//  3. Nothing else goes wrong; the misroute ends after 12 s.
//
// Why: d61cd88 checks the fan only on the send request's URL
// (routeSend, SendRequest.NamesFan). The read-back (Sender.ReadBack →
// openChat) confirms the fan only for an in-app profile (confirmChat), so
// processor_send.go unknownClick / processor_readback.go recover read
// fan-9's chat as fan-1's: it shows its start and no copy, so
// Mark.judgeFromStart says NotSent (complete), not even Empty. Once the
// late-commit horizon passed the mark is settled not sent; the next click
// is refused while the misroute lasts (ErrMisrouted, an outage wait) and,
// once the router is right again, goes to fan-1, who now has the message
// twice.
//
// A correct system never judges a read-back on a page it has not
// confirmed is the message's fan's chat: a misrouted read-back is the
// site's outage (the mark stays, an uncounted wait), and once the chat is
// fan-1's again it finds the 502's copy: one copy, nothing dead-lettered.
//
// Fixed: the document profile names the open chat's fan
// (Profile.ChatIdentity), and openChat, the read-back's opening too,
// confirms it: a page naming fan-9 at fan-1's address is the site's
// outage (ErrSiteDown with ErrOtherFansChat: an uncounted wait, review 22
// Y A) and is never judged.
func TestRev22XAMisroutedReadBackSendsTheMessageTwice(t *testing.T) {
	cfg := shortHorizon()
	f := setup(t, cfg)
	f.site.InjectFaults(fakesite.Fault{Status: 502, Commit: true}) // committed, answered 502
	var posts atomic.Int64
	var misroutedUntil atomic.Int64
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin.ServeHTTP(w, r)
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && posts.Add(1) == 1 {
				// The router goes wrong right after the first send's answer.
				misroutedUntil.Store(time.Now().Add(12 * time.Second).UnixNano())
				f.site.MisrouteChats(1_000_000, "fan-9")
				time.AfterFunc(12*time.Second, func() { f.site.MisrouteChats(0, "") })
			}
		})
	})
	m := f.newMessage("creator-a", "only for fan one, once")
	f.enqueue(m)
	ok := f.runUntil(90*time.Second, func() bool {
		return f.queueCount(f.queues.Workflows.URL) == 0 && misroutedUntil.Load() != 0 && time.Now().UnixNano() > misroutedUntil.Load()
	})
	toFan1, toFan9 := f.sentTo("fan-1"), f.sentTo("fan-9")
	dlq := f.dlq()
	reasons := failureReasons(dlq)
	if !ok || len(toFan1) != 1 || len(toFan9) != 0 || len(dlq) != 0 {
		t.Fatalf("ok %t: fan-1 has %q, fan-9 has %q (%d send requests), dead-lettered %q; the scraper's word:\n%s",
			ok, toFan1, toFan9, f.site.SendRequests(), reasons,
			linesWith(f.logs.String(), "not sent", "did not send", "sending again", "unknown", "another fan", "dead-letter", "message processed", "land"))
	}
}
