package scraper_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// staleAfterSecondSendThen500 passes the first two send requests on, then
// serves the fan's chat pages one commit behind (the second message not
// shown) for at most lag, until the third send request, which it answers
// 500 itself (nothing recorded). At the first stale page it calls restart
// once (Redis comes back from the snapshot the test took before the
// scraper ever ran).
func staleAfterSecondSendThen500(restart func() error, lag time.Duration, restartErr *atomic.Value) func(http.Handler) http.Handler {
	var sends atomic.Int64
	var staleUntil atomic.Int64
	var restarted atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				switch sends.Add(1) {
				case 2:
					origin.ServeHTTP(w, r)
					staleUntil.Store(time.Now().Add(lag).UnixMilli())
				case 3:
					staleUntil.Store(0)
					http.Error(w, "database unavailable", http.StatusInternalServerError)
				default:
					origin.ServeHTTP(w, r)
				}
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") && time.Now().UnixMilli() < staleUntil.Load() {
				if restart != nil && restarted.CompareAndSwap(false, true) {
					if err := restart(); err != nil {
						restartErr.Store(err)
					}
				}
				oneCommitBehind(w, r, origin)
				return
			}
			origin.ServeHTTP(w, r)
		})
	}
}

// TestRev22LARedisRestoredFromASnapshotWithoutTheRunKeyLetsAStaleClickPageLoseAnIdenticalText:
//
// Promise (a): no message lost (identical texts are distinct messages).
//
// Review K's fault, with the snapshot taken earlier: Redis comes back from
// a snapshot that predates the ledger's first lastsent read (the ledger's
// epoch is in it, its `<prefix>:run` key is not: a snapshot taken before
// the first click of a new environment, or any backup taken before review
// K's code was deployed), while the chat pages lag one commit behind for
// 12 s (< CHAT_FAULT_PATIENCE, 30 s) and the click made on such a page gets
// a 500 that recorded nothing.
//
// "hello", "thanks babe", "thanks babe" to one fan. After the restore the
// ledger has no run key and no lastsent for the fan: lastSentScript
// (ledger_lastsent.go) "adopts" the run's start from the epoch key (0 here,
// or the time the ledger first served: long ago), so RunSince is zero (or
// old) and staleClickPage does not hold the fan; with no record it checks
// nothing. The third message is clicked on the stale page (mark without
// the second's copy), the 500's read-back sees the second's copy after
// the anchor and takes it for the third's: lost.
func TestRev22LARedisRestoredFromASnapshotWithoutTheRunKeyLetsAStaleClickPageLoseAnIdenticalText(t *testing.T) {
	t.Parallel()
	// GIVEN three messages of creator-a to one fan, the last two identical,
	// a snapshot of Redis taken before the scraper first ran, and a lag
	// shorter than the patience
	cfg := shortHorizon()
	cfg.ChatFaultPatience = 30 * time.Second
	f := setup(t, cfg)
	if err := f.redis.Client().Save(context.Background()).Err(); err != nil {
		t.Fatalf("harness: SAVE: %v", err)
	}
	var restartErr atomic.Value
	f.behind(cfg, staleAfterSecondSendThen500(func() error { return f.redis.Redis.RestartFromSnapshot() }, 12*time.Second, &restartErr))
	// WHEN the scraper runs until the queue is empty
	ok := f.helloThanksThanks(100 * time.Second)
	if err := restartErr.Load(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	// THEN the fan has all three, and nothing is dead-lettered
	f.eachArrivedOnce(t, ok, "the chat shows it", "fenced", "does not show the message sent", "Redis serves the ledger")
}
