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

// TestRev22WCFirstMessageIsSentTwiceWhileThePagedChatRendersAnEmptyHistory
// (review 22 W, finding C):
//
// Promise (a): every accepted message reaches the fan exactly once (never
// twice); (c): an outage of the site is never read as the message's
// outcome.
//
// Fault: a paged chat site (ShowLatest(2), the V A setting: a page that
// never shows its start). The first message to a fan meets a gateway 502
// after its origin committed it (the fan has it). From that answer on,
// for 12 s, the site's history read path is degraded: every chat page
// renders its history list (the history-end marker is there) with no
// message in it, as a page whose message service answered nothing does.
// CHAT_FAULT_PATIENCE is 2 min (the lag is shorter than the patience, as
// in the G, H and I lag tests).
//
// Why: the click's mark is of an empty chat (Count 0, not Complete).
// Since 9e1166e, Mark.judgeFromStart reads a chat "showing no message at
// all on a page that did not show its start at the click" as NotSent
// ("nothing stands where a copy scrolled out would"). But nothing also
// stands there when the page shows nothing because its read path does:
// the same empty page that Mark.behind takes for an outage after a click
// on a chat that showed messages (len(now) == 0 → behind, an uncounted
// wait for the patience) is, after a click on an empty chat, a definite
// "not sent". Once LATE_COMMIT_HORIZON (4 s) passed (here by the end of
// the in-process read-back's settle, processor_send.go unknownClick: the
// click is settled not sent and retried in-process, "attempts":2; on a
// faster run at the next receive, processor_readback.go recover), the
// message is clicked again (on the degraded page, an empty mark again)
// and the site answers 200: the fan has it twice. Before 9e1166e the same
// page read Unknown.
//
// A correct system does not take a chat showing no message at all for
// proof of anything it could also be an outage's face: after an empty
// mark it waits, uncounted, as for a chat behind the click (at most the
// patience, consecutive receives), and reads the copy once the page shows
// messages again: the message is delivered once, nothing dead-lettered.
//
// Fixed: judgeFromStart's chat showing nothing on a page that never showed
// its start is Empty (Unknown), and the processor's emptyChat waits on it,
// uncounted, as on a chat behind the click; seen so by consecutive
// receives for ChatFaultPatience it is taken for not sent (review 22 V A's
// first message is still delivered, after the patience).
func TestRev22WCFirstMessageIsSentTwiceWhileThePagedChatRendersAnEmptyHistory(t *testing.T) {
	emptyHistoryAfterACommitted502(t, 2)
}

// emptyHistoryAfterACommitted502 sends the first message to a fan on a
// site showing the latest messages of a chat (0: all, with its start
// marker): its send is committed and answered 502, and for 12 s after it
// chat pages render an empty history. It fails unless the fan has the
// message once and nothing was dead-lettered (reviews 22 W C and X C).
func emptyHistoryAfterACommitted502(t *testing.T, latest int) {
	t.Helper()
	cfg := shortHorizon()
	cfg.ChatFaultPatience = 2 * time.Minute
	// Past the 12 s of empty pages (the first read after the click waits
	// out the rest of it: undecided's hint), well inside runUntil's 90 s.
	cfg.EmptyChatPatience = 30 * time.Second
	f := setup(t, cfg)
	f.site.ShowLatest(latest)
	f.site.InjectFaults(fakesite.Fault{Status: 502, Commit: true}) // committed, answered 502
	var degradedUntil atomic.Int64
	var posts atomic.Int64
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				if posts.Add(1) == 1 {
					degradedUntil.Store(time.Now().Add(12 * time.Second).UnixNano())
				}
				origin.ServeHTTP(w, r)
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") && time.Now().UnixNano() < degradedUntil.Load() {
				// The history's read path answers nothing: an empty list.
				serveRewritten(w, r, origin, func(page string) string { return chatMessage.ReplaceAllString(page, "") })
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	m := f.newMessage("creator-a", "hey, first message to you")
	f.enqueue(m)
	ok := f.runUntil(90*time.Second, func() bool {
		return f.queueCount(f.queues.Workflows.URL) == 0 && degradedUntil.Load() != 0 && time.Now().UnixNano() > degradedUntil.Load()
	})
	got, dlq := f.site.Texts("creator-a"), f.dlq()
	var reasons []string
	for _, d := range dlq {
		reasons = append(reasons, aws.ToString(d.MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if !ok || len(got) != 1 || len(dlq) != 0 {
		t.Fatalf("ok %t: the fan has %q (%d send requests), dead-lettered %q; the scraper's word:\n%s",
			ok, got, f.site.SendRequests(), reasons,
			linesWith(f.logs.String(), "not sent", "did not send", "sending again", "unknown", "scrolled out", "dead-letter", "message processed", "land", "horizon"))
	}
}
