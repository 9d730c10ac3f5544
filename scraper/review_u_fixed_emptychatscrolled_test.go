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

// TestRev22UCEmptyChatAtTheClickReadsNotSentOnceTheFanScrolledTheCopyOut
// (review 22 U, finding C):
//
// Promise (a): every accepted message reaches the fan exactly once; (c):
// a hanging site is an outage whose unknown click is settled only by a
// read-back.
//
// Fault: the creator's first message to a fan (the chat is empty at the
// click). The send request hangs (no answer) and the origin commits it
// 6 s later, inside the 15 s horizon; the fan then replies 3 times, and
// the chat, shown as an app shows it (its latest 3 messages, older ones
// on scroll, so not its start), no longer shows the copy.
//
// Why: the read-back after the horizon judges the mark of an empty chat
// by the count alone (onlyfans.Mark.JudgeChat: "m.Count == 0 ||
// len(m.Tail) == 0" → decide(copies shown)), whatever the chat shows of
// its start: no copy among the fan's 3 replies is "not sent", the mark
// is cleared and the message is clicked again: the fan has it twice. A
// chat that showed nothing at the click is "anchored at its start"
// (docs/scraper.md), but the start is not checked: a mark with an anchor
// scrolled out is Unknown ("the anchor scrolled out" in the anchor
// tests), an empty chat's is "not sent".
//
// A correct system reads an empty chat's mark against a chat that shows
// its start (complete) only: without it, messages shown and no copy among
// them is Unknown (the copy may have scrolled out), never "not sent".
//
// Fixed: Mark.JudgeChat reads the mark of a chat empty at the click "not
// sent" only on a chat showing its start (judgeFromStart); here it is
// Unknown, never clicked again. This chat never shows the copy again, so
// the unknown outcome counts as the anchor scrolled out does and the
// message waits in the DLQ with outcome_unknown (docs/design.md section
// 8): the test asserts one copy at the fan and, if dead-lettered, that
// reason (the reviewer's test asked for no DLQ, which its own "Unknown"
// cannot give on a chat that never shows the copy again).
func TestRev22UCEmptyChatAtTheClickReadsNotSentOnceTheFanScrolledTheCopyOut(t *testing.T) {
	cfg := testConfig()
	f := setup(t, cfg)
	var posts atomic.Int64
	var fanReplied atomic.Bool
	committed := make(chan struct{})
	go func() { <-committed; fanReplied.Store(true) }()
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				serveRewritten(w, r, origin, func(page string) string { return chatAsAppShowsIt(page, fanReplied.Load()) })
				return
			}
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && posts.Add(1) == 1 {
				commitLater(origin, r, 6*time.Second, committed) // no answer; committed 6 s later
				select {
				case <-r.Context().Done():
				case <-time.After(6 * time.Second):
				}
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	m := f.newMessage("creator-a", "my first message to you")
	f.enqueue(m)
	ok := f.runUntil(40*time.Second, func() bool {
		select {
		case <-committed:
			return f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	got, dlq := f.site.Texts("creator-a"), f.dlq()
	var reasons []string
	for _, d := range dlq {
		reasons = append(reasons, aws.ToString(d.MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if !ok || len(got) != 1 || len(dlq) > 1 || (len(dlq) == 1 && !strings.Contains(reasons[0], "outcome_unknown")) {
		t.Fatalf("ok %t: the fan has %q (%d send requests at the front), dead-lettered %q; the scraper's word:\n%s",
			ok, got, posts.Load(), reasons, linesWith(f.logs.String(), "not sent", "sending again", "may still land", "interrupted", "unknown", "message processed"))
	}
}
