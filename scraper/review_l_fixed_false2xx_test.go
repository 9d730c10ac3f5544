package scraper_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRev22LFA2xxChallengePageToASendLosesTheMessage:
//
// Promise (a): every queued message reaches the fan (no loss).
//
// Fault: a front answers the first send request itself with 200 and an
// HTML page (a bot-protection interstitial or an "accepted" page of a
// queueing front; the request never reaches the origin). Later sends pass.
//
// sender_click.go takes any 2xx for Sent (the body is not read), the
// processor settles it and the message is deleted: nothing checks that
// the answer is the site's send API answering (a JSON body naming the new
// message) or reads the chat back. Control: the same page with 503 is an
// outage (held, read back, sent once).
func TestRev22LFA2xxChallengePageToASendLosesTheMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
	}{
		{"200 interstitial", http.StatusOK},
		{"control: 503 interstitial", http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := shortHorizon()
			f := setup(t, cfg)
			var sends atomic.Int64
			f.behind(cfg, func(origin http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && sends.Add(1) == 1 {
						w.Header().Set("Content-Type", "text/html")
						w.WriteHeader(tc.status)
						_, _ = io.WriteString(w, `<!doctype html><title>Just a moment...</title><p>Checking your browser before accessing the site.</p>`)
						return
					}
					origin.ServeHTTP(w, r)
				})
			})
			f.enqueue(f.newMessage("creator-a", "first"), f.newMessage("creator-a", "second"))
			ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			if got := f.site.Texts("creator-a"); !ok || strings.Join(got, ",") != "first,second" {
				t.Fatalf("ok %t: the fan has %q (send requests %d, dlq %d)", ok, got, sends.Load(), len(f.dlq()))
			}
		})
	}
}
