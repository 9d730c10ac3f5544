package scraper_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRev22LDALastSentWriteRefusedByRedisLetsAStaleClickPageLoseAnIdenticalText:
//
// Promise (a): no message lost (identical texts are distinct messages).
//
// Fault: Redis refuses writes for 1.5 s (memory pressure: used memory over
// maxmemory with the noeviction policy answers every write "OOM command not
// allowed"; the same server process, nothing lost, nothing restarted)
// exactly when the second message's send is answered, so its lastsent
// record is not written; the chat pages lag one commit behind for 12 s
// (< CHAT_FAULT_PATIENCE, 30 s) and the third send gets a 500 that
// recorded nothing.
//
// "hello", "thanks babe", "thanks babe". rememberSent
// (processor_lastsent.go) only logs "last message sent to the fan not
// recorded: the next click's page is not checked against it": the ledger
// keeps lastsent = "hello", written by this very run, so staleClickPage
// finds the stale page current (it shows "hello") and neither the run
// check nor the page check holds the click. The 500's read-back takes the
// second's copy for the third's: lost. Review K's run id covers a Redis
// that lost the record; nothing covers a record that was never written.
func TestRev22LDALastSentWriteRefusedByRedisLetsAStaleClickPageLoseAnIdenticalText(t *testing.T) {
	t.Parallel()
	cfg := shortHorizon()
	cfg.ChatFaultPatience = 30 * time.Second
	f := setup(t, cfg)
	admin := f.redis.Client()
	ctx := context.Background()
	var h harnessErrors
	check := h.check
	var sends atomic.Int64
	var staleUntil atomic.Int64
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				switch sends.Add(1) {
				case 2:
					check(admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
					check(admin.ConfigSet(ctx, "maxmemory", "1").Err())
					origin.ServeHTTP(w, r)
					staleUntil.Store(time.Now().Add(12 * time.Second).UnixMilli())
					time.AfterFunc(1500*time.Millisecond, func() { check(admin.ConfigSet(ctx, "maxmemory", "0").Err()) })
				case 3:
					staleUntil.Store(0)
					http.Error(w, "database unavailable", http.StatusInternalServerError)
				default:
					origin.ServeHTTP(w, r)
				}
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") && time.Now().UnixMilli() < staleUntil.Load() {
				oneCommitBehind(w, r, origin)
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	ok := f.helloThanksThanks(100 * time.Second)
	h.fatalIfAny(t)
	f.eachArrivedOnce(t, ok, "the chat shows it", "not recorded", "does not show the message sent", "Redis serves the ledger")
}
