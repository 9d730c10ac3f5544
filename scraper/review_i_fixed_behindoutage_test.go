// Issue 22, ninth review (fresh reviewer I): the patience of the "behind"
// verdict (review 22 G and H) across an outage.

package scraper_test

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// sitePhase is how the site answers for a while after a failed send:
// every request with status (503: down; 429: refusing, Retry-After 1 s),
// or, status 0, every chat page from a replica one commit behind
// (lagging).
type sitePhase struct {
	status int
	lasts  time.Duration
}

// sendFailsThen answers the nth send request 500 itself (the write path
// fails: nothing recorded), then goes through phases, then answers as the
// origin does. Nothing of it is about a message.
func sendFailsThen(nth int64, phases ...sitePhase) func(http.Handler) http.Handler {
	var sends atomic.Int64
	var mu sync.Mutex
	var failedAt time.Time
	phase := func() (sitePhase, bool) {
		mu.Lock()
		defer mu.Unlock()
		if failedAt.IsZero() {
			return sitePhase{}, false
		}
		at := failedAt
		for _, ph := range phases {
			if at = at.Add(ph.lasts); time.Now().Before(at) {
				return ph, true
			}
		}
		return sitePhase{}, false
	}
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && sends.Add(1) == nth {
				mu.Lock()
				failedAt = time.Now()
				mu.Unlock()
				http.Error(w, "database unavailable", http.StatusInternalServerError)
				return
			}
			ph, in := phase()
			switch {
			case in && ph.status != 0:
				w.Header().Set("Retry-After", "1")
				http.Error(w, http.StatusText(ph.status), ph.status)
			case in && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/"):
				serveRewritten(w, r, origin, func(body string) string { return latestOf(body, 0, true) })
			default:
				origin.ServeHTTP(w, r)
			}
		})
	}
}

// TestRev22IABehindAfterAnOutageWaitsItsWholePatience:
//
// Promise (c): outages never count toward a message's failures.
//
// t3's send meets a 500 (nothing recorded), the whole site is then out
// for longer than CHAT_FAULT_PATIENCE, and comes back with its read path
// one commit behind for a moment (shorter than the patience). The
// patience of an earlier state (processor_readback.go undecided) was
// measured from the click, so the outage had used it up: the first
// read-back after the site returned counted outcome_unknown at once for a
// lag of seconds (review 22 I). Measured from the first sighting and
// forgotten only on a read-back that met an outage, a refusal (429) in
// between did the same (review 22 J, TestRev22JA: "lagging, refusing,
// lagging"). The patience now counts only consecutive receives that saw
// the earlier state.
func TestRev22IABehindAfterAnOutageWaitsItsWholePatience(t *testing.T) {
	t.Parallel()
	lag, out, refusing := sitePhase{lasts: 4 * time.Second}, sitePhase{status: http.StatusServiceUnavailable, lasts: 12 * time.Second},
		sitePhase{status: http.StatusTooManyRequests, lasts: 14 * time.Second}
	for name, phases := range map[string][]sitePhase{"out, then lagging": {out, lag}, "lagging, out, lagging": {lag, out, lag},
		"lagging, refusing, lagging": {lag, refusing, {lasts: 6 * time.Second}}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// GIVEN four messages of creator-a to one fan; t3's send fails,
			// then the site goes through the phases (out 12 s or refusing
			// 14 s, each longer than the patience of 8 s, between lags
			// shorter than it)
			cfg := testConfig()
			cfg.ChatFaultPatience = 8 * time.Second
			f := setup(t, cfg)
			f.behind(cfg, sendFailsThen(3, phases...))
			f.compress()
			f.enqueue(f.newMessage("creator-a", "t1"), f.newMessage("creator-a", "t2"), f.newMessage("creator-a", "t3"), f.newMessage("creator-a", "t4"))
			// WHEN the scraper runs until the queue is empty
			ok := f.runUntil(100*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN nothing is dead-lettered, no failure is counted, and every
			// message is delivered once, in order
			if d := f.dlq(); len(d) != 0 {
				t.Fatalf("an outage and short lags dead-lettered a message: %q", aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
			}
			if n := strings.Count(f.logs.String(), `"error_class":"outcome_unknown"`); n != 0 {
				t.Fatalf("an outage and %s lags counted %d outcome_unknown failure(s) of t3", lag.lasts, n)
			}
			if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "t1,t2,t3,t4" {
				t.Fatalf("ok %t, the site has %q", ok, got)
			}
		})
	}
}
