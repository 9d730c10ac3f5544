package scraper_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/message"
)

// TestRev22XBMisroutedClickWhoseMarkRedisKeepsIsDeadLettered (review 22 X,
// finding B):
//
// Promise (a): every accepted message reaches its fan (never lost); (c):
// outages (a page rendering wrong, Redis refusing writes) never
// dead-letter a message.
//
// Fault (steps): the default (document) profile, a full-history site.
//  1. creator-a has sent fan-9 one message (delivered normally).
//  2. The first message to fan-1 opens a chat page misrouted to fan-9's
//     chat (MisrouteChats(1, "fan-9"), the W B fault).
//  3. At the send click on that page (a front hook the page calls
//     synchronously at the click, before its own send request) Redis
//     refuses writes for 3 s, as a primary demoted in a failover does
//     (REPLICAOF: READONLY; then REPLICAOF NO ONE, its data kept).
//  4. Nothing else goes wrong: the next chat pages are fan-1's.
//
// Why: the attempt mark is written before the click (beforeClick →
// MarkAttempting) with the mark of the page shown: fan-9's chat (its one
// message as the anchor). The send request names fan-9 and is refused
// before it leaves (routeSend, ErrMisrouted); afterClick settles not sent,
// but ClearAttempting is refused ("attempt mark not cleared": READONLY;
// maxmemory's OOM refusal would let the DEL through) and the
// not-sent settlement lives only in this processing's memory (settle:
// c.mark = nil; keepMark then writes nothing). The next receive finds the
// Redis attempt mark and reads fan-1's chat back against an anchor that
// never was in it (processor_readback.go recover): fan-1's chat, empty,
// is "behind" the mark (Mark.behind: len(now) == 0 && Count > 0), waits the
// patience, then reads outcome_unknown on every receive and is
// dead-lettered: a message that never left is lost.
//
// A correct system knows a click refused before it left is no unresolved
// attempt whatever Redis does (the mark of another fan's chat is never an
// anchor for this fan's; e.g. the attempt mark written only once the send
// request is let through, or the refusal kept durably): the message waits
// as the outage it is and then reaches fan-1 once, nothing dead-lettered.
//
// Fixed: the document profile names the open chat's fan too
// (Profile.ChatIdentity: #chat-pane's data-fan, as the in-app profile's
// inApp.identity), and openChat confirms it before anything is typed,
// counted or read back: the misrouted page is the site's outage, never
// typed into or clicked, so no mark of fan-9's chat is ever written. The
// test asserts that the misrouted page was served and never clicked (the
// click hook is where Redis would refuse the clear) as well as the
// outcome.
func TestRev22XBMisroutedClickWhoseMarkRedisKeepsIsDeadLettered(t *testing.T) {
	if os.Getenv(fakesite.TestProfileEnv) == "spa" {
		t.Skip("the document profile's finding: the in-app profile confirms the fan before the click (confirmChat): no misrouted click, no mark of fan-9's chat")
	}
	cfg := testConfig()
	f := setup(t, cfg)
	admin := f.redis.Client()
	var h harnessErrors
	var hooked atomic.Bool
	var armed atomic.Bool
	var served atomic.Int64
	hook := `<script>document.getElementById('send').addEventListener('click', () => {
  if (!document.getElementById('message-input').value) return;
  const x = new XMLHttpRequest(); x.open('GET', '/x-review-hook', false); try { x.send(); } catch (e) {}
}, true);</script></body>`
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/x-review-hook":
				if armed.Load() && hooked.CompareAndSwap(false, true) {
					// A failover's read-only moment: the old primary turned
					// replica refuses every write (READONLY), DEL included
					// (maxmemory's OOM refusal lets DEL through).
					ctx := context.Background()
					h.check(admin.Do(ctx, "REPLICAOF", "127.0.0.1", "1").Err())
					time.AfterFunc(3*time.Second, func() { h.check(admin.Do(ctx, "REPLICAOF", "NO", "ONE").Err()) })
				}
				w.WriteHeader(http.StatusNoContent)
			case r.Method == http.MethodGet && r.URL.Path == "/my/chats/chat/fan-1":
				serveRewritten(w, r, origin, func(page string) string {
					if strings.Contains(page, "<title>Chat with fan-9</title>") {
						// The misrouted page (fan-9's chat at fan-1's address).
						served.Add(1)
						return strings.Replace(page, "</body>", hook, 1)
					}
					return page
				})
			default:
				origin.ServeHTTP(w, r)
			}
		})
	})
	// 1. fan-9 has one message from creator-a.
	nine, err := message.New("user-creator-a", "fan-9", "hello nine", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	nine.CreatorID = "creator-a"
	f.enqueue(nine)
	if !f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 }) {
		t.Fatalf("harness: fan-9's message not delivered:\n%s", linesWith(f.logs.String(), "message processed"))
	}
	// 2. fan-1's first message meets one misrouted chat page.
	armed.Store(true)
	f.site.MisrouteChats(1, "fan-9")
	m := f.newMessage("creator-a", "only for fan one")
	f.enqueue(m)
	ok := f.runUntil(90*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	h.fatalIfAny(t)
	toFan1, toFan9 := f.sentTo("fan-1"), f.sentTo("fan-9")
	dlq := f.dlq()
	reasons := failureReasons(dlq)
	if served.Load() == 0 {
		t.Fatal("harness: the misrouted page was never served")
	}
	if !ok || len(toFan1) != 1 || len(toFan9) != 1 || len(dlq) != 0 || hooked.Load() {
		t.Fatalf("ok %t: fan-1 has %q, fan-9 has %q (%d send requests), dead-lettered %q, the misrouted page clicked: %t; the scraper's word:\n%s",
			ok, toFan1, toFan9, f.site.SendRequests(), reasons, hooked.Load(),
			linesWith(f.logs.String(), "not cleared", "another fan", "unknown", "behind", "dead-letter", "message processed"))
	}
}
