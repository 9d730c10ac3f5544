//go:build reviewfindings

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

// fanGreeting is the creator's message and, word for word, the fan's own
// message to the creator ("good morning" both ways is an everyday chat).
const fanGreeting = "good morning"

// chatWithFanMessage rewrites a chat page the way a chat web app shows it
// (as chatAsAppShowsIt, redisrefuses_fixture_test.go: the fan's messages
// are message elements of the history after the creator's), once the fan
// wrote: the fan's fanGreeting after the creator's messages.
func chatWithFanMessage(page string, fanWrote bool) string {
	if !fanWrote {
		return page
	}
	return strings.Replace(page, `<li class="history-end"`, `<li class="message">`+fanGreeting+`</li><li class="history-end"`, 1)
}

// TestRev22WAFansOwnIdenticalMessageIsTakenForTheCreatorsCopy (review 22
// W, finding A):
//
// Promise (a): every accepted message reaches the fan exactly once, never
// lost; section 8: only a read-back turns an unknown click into sent.
//
// Fault: the chat as a chat web app shows it (the fixture of reviews M, N,
// P and U, chatAsAppShowsIt: the fan's messages are message elements of
// the history, which the default profile's "#history .message" matches;
// docs/scraper.md names the selector matching only the creator's messages
// as the configuration with a residual). The creator's message "good
// morning" is clicked; a gateway answers 502 and the origin never
// commits it (nothing recorded). Meanwhile the fan writes to the creator
// "good morning" too. Two cases: the first message to the fan (an empty
// chat at the click: judgeFromStart, 9e1166e/3370f8d), and a second one
// (anchored at the first).
//
// Why: onlyfans.Mark.JudgeChat counts every element the history selector
// matches by its text alone: judgeFromStart takes "a copy shown now" for
// this click's (v.Identical > 0 → Sent), and the anchored path takes a
// copy after the anchor for it (decide). The fan's own message is such a
// "copy": the read-back right after the 502 (processor_send.go, the
// unknown click's readBack) says Sent and settles the click sent ("sent:
// the chat shows it after site answered 502 (1 identical texts, 0 before
// the click)"), and the message that never reached the site is lost. No
// outage is needed beyond one 502 that did not commit.
//
// A correct system counts as a copy only the creator's own messages (an
// outgoing-message selector, or the element's side/author), while it may
// line the chat up with every message; the fan's "good morning" is no
// proof of a send: the read-back says not sent after the horizon and the
// message is sent once.
func TestRev22WAFansOwnIdenticalMessageIsTakenForTheCreatorsCopy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []string // the creator's messages sent first (no fault)
	}{
		{"first message to the fan (empty chat)", nil},
		{"after an earlier message (anchored)", []string{"hey you, thanks for the follow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shortHorizon()
			f := setup(t, cfg)
			var posts atomic.Int64
			var fanWrote atomic.Bool
			faultAt := int64(len(tc.before) + 1)
			f.behind(cfg, func(origin http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
						serveRewritten(w, r, origin, func(page string) string { return chatWithFanMessage(page, fanWrote.Load()) })
						return
					}
					if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && posts.Add(1) == faultAt {
						// A gateway's 502: the origin never got it. The fan
						// writes "good morning" to the creator meanwhile.
						fanWrote.Store(true)
						http.Error(w, "bad gateway", http.StatusBadGateway)
						return
					}
					origin.ServeHTTP(w, r)
				})
			})
			want := append(append([]string(nil), tc.before...), fanGreeting)
			for _, text := range want {
				f.enqueue(f.newMessage("creator-a", text))
			}
			ok := f.runUntil(90*time.Second, func() bool {
				return f.queueCount(f.queues.Workflows.URL) == 0
			})
			got, dlq := f.site.Texts("creator-a"), f.dlq()
			var reasons []string
			for _, d := range dlq {
				reasons = append(reasons, aws.ToString(d.MessageAttributes[scraper.AttrFailureReason].StringValue))
			}
			if !ok || strings.Join(got, "|") != strings.Join(want, "|") || len(dlq) != 0 {
				t.Fatalf("ok %t: the fan has %q from the creator, want %q (%d send requests at the front); dead-lettered %q; the scraper's word:\n%s",
					ok, got, want, posts.Load(), reasons,
					linesWith(f.logs.String(), "found in the chat", "not sent", "sending again", "may still land", "unknown", "message processed"))
			}
		})
	}
}
