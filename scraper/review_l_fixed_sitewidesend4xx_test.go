package scraper_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// TestRev22LCAWAFRuleOnTheSendRouteDeadLettersEveryCreatorsMessages:
//
// Promise (c): a site answering 403/404 for every chat makes messages
// wait; only an answer about one message or fan may dead-letter.
//
// Fault: for 4 s a front (a WAF rate-based or bot rule on the send API,
// whose default block answer is 403 with a challenge page; or a front-end
// routing change answering 404 on the send route) answers every send
// request, for every creator and fan; the chat pages, the probe chat and
// the session check (GET /api2/v2/users/me) are untouched. Then the site
// takes sends again.
//
// Reviews J and K made a chat *page* answered 404/403 an unusable chat the
// probe decides (chatRefused); a *send* answered the same still goes
// through judge (processor_send.go): 403 -> refused -> session good ->
// recipient_refused to the DLQ at once; 404 -> client_error to the DLQ at
// once. Nothing compares the refusal with other fans' sends, so every
// head message received in those seconds is dead-lettered, and each
// creator's next one with it.
func TestRev22LCAWAFRuleOnTheSendRouteDeadLettersEveryCreatorsMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"403 challenge on every send", http.StatusForbidden, `<!doctype html><title>Attention Required!</title><p>Sorry, you have been blocked</p>`},
		{"404 on every send", http.StatusNotFound, `{"error":"not found"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// GIVEN three messages for each of two creators and a front
			// refusing every send request for 4 s
			cfg := testConfig()
			f := setup(t, cfg)
			var until atomic.Int64
			var refusedSends atomic.Int64
			f.behind(cfg, func(origin http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
						if until.Load() == 0 {
							until.CompareAndSwap(0, time.Now().Add(4*time.Second).UnixMilli())
						}
						if time.Now().UnixMilli() < until.Load() {
							refusedSends.Add(1)
							w.Header().Set("Content-Type", "text/html")
							w.WriteHeader(tc.status)
							_, _ = io.WriteString(w, tc.body)
							return
						}
					}
					origin.ServeHTTP(w, r)
				})
			})
			for _, c := range []string{"creator-a", "creator-b"} {
				f.enqueue(f.newMessage(c, c+" 0"), f.newMessage(c, c+" 1"), f.newMessage(c, c+" 2"))
			}
			// WHEN the scraper runs until the queue is empty
			ok := f.runUntil(90*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN every message reached its fan once and nothing is in
			// the DLQ
			d := f.dlq()
			var reasons []string
			for _, m := range d {
				reasons = append(reasons, aws.ToString(m.MessageAttributes[scraper.AttrFailureReason].StringValue))
			}
			a, b := f.site.Texts("creator-a"), f.site.Texts("creator-b")
			if !ok || len(d) != 0 || len(a) != 3 || len(b) != 3 {
				t.Fatalf("ok %t: refused sends %d; creator-a has %q, creator-b %q; %d dead-lettered: %q", ok, refusedSends.Load(), a, b, len(d), reasons)
			}
		})
	}
}
