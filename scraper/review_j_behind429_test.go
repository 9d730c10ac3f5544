//go:build reviewfindings

package scraper_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// Issue 22, tenth review (fresh reviewer J): the patience of the "behind"
// verdict across a period in which the site refused every request (429).

// phase is one stretch of a scripted site after the failed send.
type phase struct {
	// until is the end of the stretch, counted from the failed send.
	until time.Duration
	// serve answers one request in it (origin: the fake site).
	serve func(origin http.Handler, w http.ResponseWriter, r *http.Request)
}

// lagging serves chat pages from a replica one commit behind.
func lagging(origin http.Handler, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
		origin.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	origin.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write([]byte(latestOf(rec.Body.String(), 0, true)))
}

// throttling answers every request 429 with Retry-After: 1 (the site
// rate-limiting the task's IP: it refuses, it is not about a message).
func throttling(_ http.Handler, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Retry-After", "1")
	http.Error(w, "too many requests", http.StatusTooManyRequests)
}

// sendFailsThen answers the nth send request 500 itself (the write path
// fails: nothing recorded), then runs phases, then serves as the origin.
func sendFailsThen(nth int64, phases ...phase) func(http.Handler) http.Handler {
	var sends atomic.Int64
	var mu sync.Mutex
	var failedAt time.Time
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && sends.Add(1) == nth {
				mu.Lock()
				failedAt = time.Now()
				mu.Unlock()
				http.Error(w, "database unavailable", http.StatusInternalServerError)
				return
			}
			mu.Lock()
			since, failed := time.Since(failedAt), !failedAt.IsZero()
			mu.Unlock()
			if failed {
				for _, ph := range phases {
					if since < ph.until {
						ph.serve(origin, w, r)
						return
					}
				}
			}
			origin.ServeHTTP(w, r)
		})
	}
}

// TestRev22JABehindAcross429RefusalWaitsItsWholePatience:
//
// Promise (c): an unreachable, refusing, hanging, 5xx or lagging site is
// never the message's fault; the creator's messages are delivered once,
// in order, afterwards, with no failure counted.
//
// Fault: t3's send meets a 500 (nothing recorded). The site's read path
// is one commit behind (the chat shows an earlier state than at the
// click: Verdict.Behind) for 4 s, so the first read-back records the
// first sighting (ledger behind:<id>:<click>). Then the site answers
// every request 429 (Retry-After: 1) for 14 s, longer than
// CHAT_FAULT_PATIENCE (8 s), and comes back with its read path behind
// for 6 s (shorter than the patience), then healthy.
//
// Code path: scraper/processor_readback.go readBack forgets the first
// sighting (forgetBehind) only when the read-back's error isOutage
// (ErrSiteDown, ErrTimeout, ErrBrowserDown). A chat page answered 429 is
// a *onlyfans.StatusError, which unreadable turns into a rate_limited
// wait without forgetting. So the 14 s in which no read-back saw the
// chat count as "seen behind", and the first read-back of the short lag
// after it (undecided) finds the sighting older than the patience and
// counts outcome_unknown at once: review 22 I's finding again, with a
// refusing site instead of an unreachable one. The same holds for every
// receive that never reaches readBack (breaker open in decide or
// readBack, a paused creator in unlessResumed, credentials unavailable).
//
// Suggested fix: forget the sighting on every read-back that did not
// read the chat (any error, not only isOutage), and on every receive of
// a message with an attempt mark that does not read back at all (breaker
// open, paused, no credentials); or, more robustly, measure the patience
// as time seen behind by consecutive successful read-backs (record the
// last sighting too and restart when the gap between two sightings is
// longer than the message's wait would explain).
func TestRev22JABehindAcross429RefusalWaitsItsWholePatience(t *testing.T) {
	t.Parallel()
	// GIVEN four messages of creator-a to one fan; t3's send fails, the
	// read path lags 4 s, the site refuses everything (429) for 14 s,
	// then lags again for 6 s; the patience is 8 s
	cfg := testConfig()
	cfg.ChatFaultPatience = 8 * time.Second
	f := setup(t, cfg)
	f.behind(cfg, sendFailsThen(3,
		phase{4 * time.Second, lagging},
		phase{18 * time.Second, throttling},
		phase{24 * time.Second, lagging},
	))
	f.compress()
	f.enqueue(f.newMessage("creator-a", "t1"), f.newMessage("creator-a", "t2"), f.newMessage("creator-a", "t3"), f.newMessage("creator-a", "t4"))
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(100*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN nothing is dead-lettered, no failure is counted, and every
	// message is delivered once, in order
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("a 429 refusal then a short lag dead-lettered a message: %q", aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if n := strings.Count(f.logs.String(), `"error_class":"outcome_unknown"`); n != 0 {
		t.Log(linesWith(f.logs.String(), `"msg":"message processed"`))
		t.Fatalf("a 14 s refusal (429) then a 6 s lag counted %d outcome_unknown failure(s) of t3 (patience 8 s; no read-back saw the chat during the refusal)", n)
	}
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "t1,t2,t3,t4" {
		t.Fatalf("ok %t, the site has %q", ok, got)
	}
}

// linesWith is the log lines holding any of parts.
func linesWith(logs string, parts ...string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		for _, p := range parts {
			if strings.Contains(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
