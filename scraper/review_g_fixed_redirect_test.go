// Issue 22, seventh review (fresh reviewer G): a 3xx answer to a send
// whose origin commits the send after the answer.

package scraper_test

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
)

// firstSendRedirectsThenCommitsLate answers the first send request with a
// redirect (status, Location /maintenance) after 200 ms while the request
// goes on to the origin, which records it commitAfter later: a front that
// gave up on a slow origin and sends its client to an error page by
// redirect (a CDN's or a load balancer's custom error page configured as a
// redirect, a WAF's challenge) while the origin's write lands afterwards.
// Later sends pass through.
func firstSendRedirectsThenCommitsLate(status int, commitAfter time.Duration, late *atomic.Int64) func(http.Handler) http.Handler {
	return firstSendCommitsLateAfter(commitAfter, late, func(w http.ResponseWriter) {
		w.Header().Set("Location", "/maintenance")
		w.WriteHeader(status)
	})
}

// TestRev22GAA3xxWhoseOriginCommitsLateIsSentOnce:
//
// Promise (a): never clicked again without a read-back that proves it was
// not sent (late commits inside LATE_COMMIT_HORIZON).
//
// A 3xx answer to a send is Unknown (sender_click.go click) but not
// "unanswered" (processor_send.go unanswered: no answer or a 5xx only), so
// it is neither held to the late-commit horizon nor charged to it: the
// read-back right after it (ReadBackSettle) does not show the commit yet
// (6 s later, inside the 15 s horizon) and unknownClick clicks again after
// ServerBackoff. 500 is the control (held to the horizon: passes).
func TestRev22GAA3xxWhoseOriginCommitsLateIsSentOnce(t *testing.T) {
	t.Parallel()
	for _, status := range []int{302, 307, 500} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			t.Parallel()
			// GIVEN a front that answers the first send 'status' while its
			// origin records it 6 s later (inside the 15 s horizon)
			cfg := testConfig()
			f := setup(t, cfg)
			var late atomic.Int64
			f.behind(cfg, firstSendRedirectsThenCommitsLate(status, 6*time.Second, &late))
			f.enqueue(f.newMessage("creator-a", "a send that lands late"))
			// WHEN the scraper runs until the queue is empty and the late
			// commit landed
			ok := f.runUntil(60*time.Second, func() bool {
				return f.queueCount(f.queues.Workflows.URL) == 0 && late.Load() == 1
			})
			// THEN the fan has the message once
			if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
				t.Fatalf("%d then a late commit: ok %t, the fan has %d copies %q (send requests %d)", status, ok, len(got), got, f.site.SendRequests())
			}
		})
	}
}

// TestRev22GBA3xxWhoseOriginCommitsLateKeepsTheSiteWithinTheLimit:
//
// Promise (b): never more than the limit per rolling window at the site,
// late commits included. The 3xx's approval is restamped at its answer
// (0.2 s), not held to the horizon: the gate (1 per 10 s) admits the next
// send of the creator 10.2 s after that answer, while the site recorded
// the redirected request at 6.2 s: two sends in 4 s at the site.
func TestRev22GBA3xxWhoseOriginCommitsLateKeepsTheSiteWithinTheLimit(t *testing.T) {
	t.Parallel()
	// GIVEN a gate of 1 send per 10 s, 2 messages of creator-a, and a front
	// that answers the first send 302 while its origin records it 6 s later
	cfg := testConfig()
	gateCfg := ratelimit.Config{Limit: 1, Window: 10 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"}
	f := setupWithGate(t, cfg, gateCfg)
	var late atomic.Int64
	f.behindGate(cfg, gateCfg, firstSendRedirectsThenCommitsLate(302, 6*time.Second, &late))
	f.enqueue(f.newMessage("creator-a", "r0"), f.newMessage("creator-a", "r1"))
	// WHEN the scraper drains them
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 && late.Load() == 1 })
	for _, s := range f.site.Sent() {
		t.Logf("sent %s at %s", s.Text, s.At.Format("15:04:05.000"))
	}
	// THEN no 10 s window at the site held more than 1
	if got := f.site.MaxInWindow(10 * time.Second)["creator-a"]; !ok || got > 1 {
		t.Fatalf("ok %t: %d sends in one 10 s window at the site (limit 1), texts %q", ok, got, f.site.Texts("creator-a"))
	}
}
