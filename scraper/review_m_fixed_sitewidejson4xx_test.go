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

// TestRev22MCASiteWideJSON4xxOnEverySendDeadLettersEveryCreatorsMessages:
//
// Promise (c): a site-wide-broken site never puts a message in a DLQ; only
// an answer about that one message or fan may.
//
// Fault: for 4 s every send request of every creator and fan is answered
// with a 4xx in the API's own media type (application/json), while chat
// pages, the probe chat and the session check (GET /api2/v2/users/me) work:
//   - 404 {"error":"Not found"}: the web app's API deployed without the
//     send route for a moment (the origin itself, not a front), or an API
//     gateway's "no route matched" (Kong, Envoy, AWS API Gateway all answer
//     JSON);
//   - 403 {"message":"Forbidden"}: AWS API Gateway's / a WAF's JSON block
//     answer in front of the API.
//
// Then sends work again.
//
// Why: review L C's fix tells a front from the API by media type only
// (onlyfans/sender_click.go:211 res.Foreign = !OwnAnswer(content-type);
// profile.go:188 OwnAnswer). A JSON 4xx is "the API's own": judge
// (processor_send.go:219-246) takes 404 for a permanent refusal of this
// message (client_error, DLQ at once) and 403, after a good session
// check, for this fan's refusal (recipient_refused, DLQ). Nothing compares
// the refusal with other fans' sends or with the probe chat, so every head
// message received in those seconds is dead-lettered. docs/scraper.md
// names it "Left" (line 68); the promise does not.
//
// Suggested fix: treat a send refusal as this fan's only after something
// about this fan confirms it: before dead-lettering a 4xx send refusal
// (other than 400/413/422 about the body), try the probe chat's send path
// (or the same creator's previous fan, or a second creator) the way
// chatFault does for pages: a probe that is refused the same way is the
// site's outage (wait, uncounted); or hold refusals of a status for a
// patience across fans (a status refused for two different fans within
// the patience is site-wide).
// Fixed: the profile names the field the API's own refusal carries
// (sendRequest.refusalField, "error.code"); a 4xx body without it is a
// front's answer (Result.Foreign): an outage, uncounted.
func TestRev22MCASiteWideJSON4xxOnEverySendDeadLettersEveryCreatorsMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"404 route gone, JSON", http.StatusNotFound, `{"error":"Not found"}`},
		{"403 API gateway block, JSON", http.StatusForbidden, `{"message":"Forbidden"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// GIVEN three messages for each of two creators and a front
			// answering every send request with a JSON 4xx for 4 s
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
							w.Header().Set("Content-Type", "application/json")
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
