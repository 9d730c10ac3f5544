// Issue 22, seventh review (fresh reviewer G): a read path that lags (a
// page tier reading from a replica behind its primary): after a 5xx, and
// on the page a click is made on.

package scraper_test

import (
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// lastMessage is the last of the creator's messages a chat page shows.
var lastMessage = regexp.MustCompile(`<li class="message"[^>]*>[^<]*</li>(<li class="history-end")`)

// oneCommitBehind serves origin's chat page as a read replica one commit
// behind its primary would: the chat's last message not shown yet.
func oneCommitBehind(w http.ResponseWriter, r *http.Request, origin http.Handler) {
	serveRewritten(w, r, origin, func(page string) string { return lastMessage.ReplaceAllString(page, "$1") })
}

// secondSendFailsThenReadsLag answers the second send request 500 itself
// (nothing recorded: the write path fails) and from then on serves every
// chat page from a read replica one commit behind its primary (the last
// message of every chat not shown yet): the site's storage is degraded,
// nothing about this message.
func secondSendFailsThenReadsLag(lagging *atomic.Bool) func(http.Handler) http.Handler {
	var sends atomic.Int64
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && sends.Add(1) == 2 {
				lagging.Store(true)
				http.Error(w, "database unavailable", http.StatusInternalServerError)
				return
			}
			if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/my/chats/chat/") || !lagging.Load() {
				origin.ServeHTTP(w, r)
				return
			}
			oneCommitBehind(w, r, origin)
		})
	}
}

// TestRev22GEALaggingReadReplicaAfterA5xxNeverDeadLetters:
//
// Promise (c): a half-broken site never sends a message to a DLQ and never
// counts toward its failures.
//
// m1 is sent; m2's click (anchored at m1, shown at the click) gets a 500
// from a failing write path, and the site's chat pages then come from a
// replica one commit behind: m1, the anchor, is not shown. The read-back
// says Unknown ("the messages shown last at the click are no longer
// shown") and every receive counts outcome_unknown (processor_send.go
// unknownClick, processor_readback.go recover: case Unknown -> p.fail):
// after MaxFailures m2 is in the DLQ, for a lag of the site's storage.
func TestRev22GEALaggingReadReplicaAfterA5xxNeverDeadLetters(t *testing.T) {
	t.Parallel()
	// GIVEN two messages of creator-a to one fan and the degraded site,
	// its lag shorter than CHAT_FAULT_PATIENCE (an earlier state that
	// lasts longer is read as a deleted anchor: review H's
	// TestRev22HBTheCreatorDeletingTheAnchorDoesNotHoldTheCreatorForDays)
	cfg := testConfig()
	cfg.ChatFaultPatience = 2 * time.Minute
	f := setup(t, cfg)
	var lagging atomic.Bool
	f.behind(cfg, secondSendFailsThenReadsLag(&lagging))
	f.compress()
	f.enqueue(f.newMessage("creator-a", "m1"), f.newMessage("creator-a", "m2"))
	// WHEN the scraper runs through 8 receives of the lag
	f.runUntil(90*time.Second, func() bool {
		return len(f.compressed.Asked()) >= 8 || f.queueCount(f.queues.Workflows.DLQURL) > 0 || f.queueCount(f.queues.Workflows.URL) == 0
	})
	// THEN nothing is dead-lettered and no failure is counted
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("a lagging read replica dead-lettered m2 after %d receives: %q", len(f.compressed.Asked()),
			aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if n := strings.Count(f.logs.String(), `"error_class":"outcome_unknown"`); n != 0 {
		t.Fatalf("a lagging read replica counted %d outcome_unknown failure(s) of m2", n)
	}
}

// staleClickPageThen500 serves the first chat page after the second send
// (the page the third send is clicked on) from a replica one commit behind
// (the chat's last message not shown yet), and answers the third send 500
// itself (nothing recorded). Every other page is fresh. stalePage false is
// the control: the 500 alone.
func staleClickPageThen500(stalePage bool) func(http.Handler) http.Handler {
	var sends atomic.Int64
	var stale atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				switch sends.Add(1) {
				case 2:
					origin.ServeHTTP(w, r)
					stale.Store(stalePage)
				case 3:
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

// TestRev22GFAStaleClickPageWithIdenticalTextsDoesNotLoseTheMessage:
//
// Promise (a): a message is delivered to the fan once.
//
// "thanks babe" is sent twice in a row (identical texts are distinct
// messages). The page m2 is clicked on comes from a replica one commit
// behind: it does not show m1 yet, so m2's mark is anchored at m0 with no
// copy of the text. m2's send gets a 500 (nothing recorded); the
// read-back (fresh) shows m1's copy after the anchor and settles m2 sent
// (anchor.go JudgeChat: a copy after the anchor is this click's): the
// fan gets the text once, m2 is lost.
func TestRev22GFAStaleClickPageWithIdenticalTextsDoesNotLoseTheMessage(t *testing.T) {
	t.Parallel()
	for name, stalePage := range map[string]bool{"stale click page": true, "control (500 only)": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// GIVEN three messages of creator-a to one fan, the last two
			// identical
			cfg := shortHorizon()
			f := setup(t, cfg)
			f.behind(cfg, staleClickPageThen500(stalePage))
			f.enqueue(f.newMessage("creator-a", "hello"), f.newMessage("creator-a", "thanks babe"), f.newMessage("creator-a", "thanks babe"))
			// WHEN the scraper runs until the queue is empty
			ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN the fan has all three
			if got := f.site.Texts("creator-a"); !ok || len(got) != 3 {
				t.Fatalf("ok %t: the fan has %d of 3 messages %q (send requests %d)", ok, len(got), got, f.site.SendRequests())
			}
		})
	}
}
