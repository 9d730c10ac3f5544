// Issue 22, eighth review (fresh reviewer H): the "behind" verdict
// (onlyfans.Mark.behind, review 22 G) on chats it was not written for.

package scraper_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// pagingFrontFifthSendFailsThenLags serves every chat page with only its
// latest n messages (0: all), answers the fifth send request 500 itself
// (nothing recorded: the write path fails) and from then on serves every
// chat page from a replica one commit behind its primary: the site's
// storage is degraded, nothing about this message.
func pagingFrontFifthSendFailsThenLags(n int) func(http.Handler) http.Handler {
	var sends atomic.Int64
	var lagging atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && sends.Add(1) == 5 {
				lagging.Store(true)
				http.Error(w, "database unavailable", http.StatusInternalServerError)
				return
			}
			if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				origin.ServeHTTP(w, r)
				return
			}
			serveRewritten(w, r, origin, func(body string) string { return latestOf(body, n, lagging.Load()) })
		})
	}
}

// TestRev22HALaggingReplicaOnAChatShowingItsLatestMessagesNeverDeadLetters:
//
// Promise (c): a half-broken site never sends a message to a DLQ and never
// counts toward its failures.
//
// Review G's lagging replica (a failed write, then every chat page one
// commit behind), on a chat page that shows only its latest 3 messages (as
// chat web apps do, the fake site's ShowLatest). t5's click saw
// [t2 t3 t4]; the lagging page shows [t1 t2 t3]: an earlier state of the
// chat, but as many messages as at the click, so Mark.behind (anchor.go:
// `len(now) >= m.Count` → false) does not see it, the verdict is Unknown
// ("no longer shown") and every receive counts outcome_unknown: t5 is in
// the DLQ after MaxFailures for the site's storage lag. The control (a
// page showing every message) is review G's fixed case and holds.
func TestRev22HALaggingReplicaOnAChatShowingItsLatestMessagesNeverDeadLetters(t *testing.T) {
	t.Parallel()
	for name, latest := range map[string]int{"a chat page showing its latest 3": 3, "control (every message shown)": 0} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// GIVEN five messages of creator-a to one fan and the degraded
			// site behind a paging front
			cfg := testConfig()
			// the lag shorter than CHAT_FAULT_PATIENCE (longer: a deleted anchor, TestRev22HB)
			cfg.ChatFaultPatience = 2 * time.Minute
			f := setup(t, cfg)
			f.behind(cfg, pagingFrontFifthSendFailsThenLags(latest))
			f.compress()
			f.enqueue(f.newMessage("creator-a", "t1"), f.newMessage("creator-a", "t2"), f.newMessage("creator-a", "t3"),
				f.newMessage("creator-a", "t4"), f.newMessage("creator-a", "t5"))
			// WHEN the scraper runs through 8 receives of t5 in the lag
			f.runUntil(90*time.Second, func() bool {
				return len(f.compressed.Asked()) >= 12 || f.queueCount(f.queues.Workflows.DLQURL) > 0 || f.queueCount(f.queues.Workflows.URL) == 0
			})
			// THEN nothing is dead-lettered and no failure is counted
			if d := f.dlq(); len(d) != 0 {
				t.Fatalf("a lagging read replica dead-lettered t5 after %d receives: %q", len(f.compressed.Asked()),
					aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
			}
			if n := strings.Count(f.logs.String(), `"error_class":"outcome_unknown"`); n != 0 {
				t.Fatalf("a lagging read replica counted %d outcome_unknown failure(s) of t5", n)
			}
			if got := f.site.Texts("creator-a"); len(got) != 4 {
				t.Fatalf("the site has %q", got)
			}
		})
	}
}

// thirdSendFailsAsTheCreatorDeletes answers the third send request 502
// itself (a gateway whose origin never got it: nothing recorded) while the
// creator deletes the message sent second (the one shown last at the
// click) from the chat; delete false is the control (the 502 alone).
func (f *fixture) thirdSendFailsAsTheCreatorDeletes(del bool) func(http.Handler) http.Handler {
	var sends atomic.Int64
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && sends.Add(1) == 3 {
				if del {
					f.site.DeleteSent("m2")
				}
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			}
			origin.ServeHTTP(w, r)
		})
	}
}

// TestRev22HBTheCreatorDeletingTheAnchorDoesNotHoldTheCreatorForDays:
//
// Promises (a) and (c): an unknown click is settled by a read-back, and
// only an outage waits uncounted; nothing reaches a DLQ by waiting out
// maxReceiveCount.
//
// "ok"'s send gets a 502 from a gateway (nothing recorded) while the
// creator deletes "how are you", the message shown last at the click. The
// chat now shows [hi]: fewer messages, ending with one shown before the
// anchor, which Mark.behind takes for a read path behind the site's
// writes (anchor.go behind; processor_readback.go undecided: an
// uncounted site_unavailable wait, the attempt mark kept). Nothing will
// ever change that page: every receive waits again, so "ok" is never
// sent, never dead-lettered with outcome_unknown (docs/design.md: the
// anchor gone is Unknown, counted, then the DLQ with its reason), and
// the creator's later messages (one FIFO group) wait behind it until the
// backstop (990 receives, about 10 days at the 15 min cap) sends it to
// the DLQ as outage_too_long. The control (the 502 alone) is settled not
// sent after the horizon and everything is delivered.
func TestRev22HBTheCreatorDeletingTheAnchorDoesNotHoldTheCreatorForDays(t *testing.T) {
	t.Parallel()
	for name, del := range map[string]bool{"the anchor deleted": true, "control (the 502 alone)": false} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// GIVEN four messages of creator-a to one fan, the third's send
			// meeting a 502 as the creator deletes the second
			cfg := testConfig()
			f := setup(t, cfg)
			f.behind(cfg, f.thirdSendFailsAsTheCreatorDeletes(del))
			f.compress()
			f.enqueue(f.newMessage("creator-a", "hi"), f.newMessage("creator-a", "how are you"), f.newMessage("creator-a", "ok"),
				f.newMessage("creator-a", "see you"))
			// WHEN the scraper runs well past the horizon (15 s) and
			// MaxFailures (3) read-backs
			ok := f.runUntil(40*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN the creator's later message is delivered, and "ok" was
			// either sent or waits in the DLQ with its reason
			texts := f.site.Texts("creator-a")
			if !ok || !strings.Contains(strings.Join(texts, ","), "see you") {
				t.Fatalf("the creator's later message never sent after %d receives (%d site_unavailable waits, %d of them \"an earlier state\"): the site has %q",
					len(f.compressed.Asked()), strings.Count(f.logs.String(), `"error_class":"site_unavailable"`), strings.Count(f.logs.String(), "shows an earlier state than at the click"), texts)
			}
			if d := f.dlq(); del && (len(d) != 1 || !strings.Contains(aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue), scraper.ClassOutcomeUnknown)) {
				t.Fatalf("the DLQ holds %d message(s)", len(d))
			}
		})
	}
}
