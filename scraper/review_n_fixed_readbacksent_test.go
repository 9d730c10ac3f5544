package scraper_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRev22NAReadBackSentWhoseLastSentWriteRedisRefusedIsDeadLettered:
//
// Promise (c): a Redis outage (refusing writes) never puts a message in a
// DLQ; (a): a message the site accepted is settled sent, never lost to a
// guess.
//
// Fault: the second message's send request reaches the site, which
// commits it, but a gateway in front answers 502 (the site's outage).
// Redis refuses writes (maxmemory 1, noeviction) from that send request
// until 3 s later. The scraper reads the chat back right away and finds
// the message sent (proof, a read-back Sent verdict), but Redis refuses
// the fan's last-sent record. Right after that read-back the fan replies
// three times and the chat (showing its latest 3 messages, like every
// chat app) scrolls the click's anchor out of view.
//
// Why: commit dd4c841 keeps the proof of a click only when the proof is
// the site's 2xx (afterClick, processor_send.go:151-154 ->
// answeredUnsettled). The other proof, a read-back that found the message
// sent, meets the same refused write in unknownClick
// (processor_send.go:191-194: settleSent fails -> p.wait, nothing kept)
// and in recover (processor_readback.go:38-41): the mark stays the
// pre-click one, not Answered, so the next processing reads the chat back
// again (recover, processor_readback.go:27 answeredSent false), cannot
// line the chat up with the anchor any more ("no longer shown") ->
// undecided -> fail(ClassOutcomeUnknown), counted, and after MaxFailures
// the sent message is dead-lettered (and a redrive sends it twice).
//
// Suggested fix: treat a read-back Sent verdict like the 2xx: when
// settleSent fails after any Sent verdict (unknownClick and recover), call
// answeredUnsettled (mark Answered, kept in Redis if it takes it and in
// the mark store via keepMark) so the next processing settles it from
// that proof without a read-back.
func TestRev22NAReadBackSentWhoseLastSentWriteRedisRefusedIsDeadLettered(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	f := setup(t, cfg)
	admin := f.redis.Client()
	var h harnessErrors
	var sends, pagesAfter atomic.Int64
	var fanReplied, committed atomic.Bool
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				if sends.Add(1) == 2 {
					refuseRedisWritesFor(admin, 3*time.Second, &h)
					// The origin commits; the gateway answers 502.
					rec := httptest.NewRecorder()
					origin.ServeHTTP(rec, r)
					committed.Store(true)
					http.Error(w, "bad gateway", http.StatusBadGateway)
					return
				}
				origin.ServeHTTP(w, r)
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				// The first chat page after the commit (the read-back)
				// shows the message; the fan replies right after it.
				replied := fanReplied.Load()
				if committed.Load() && pagesAfter.Add(1) == 1 {
					defer fanReplied.Store(true)
				}
				serveRewritten(w, r, origin, func(page string) string { return chatAsAppShowsIt(page, replied) })
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	texts := []string{"hi there", "did you see my pic?"}
	for _, text := range texts {
		f.enqueue(f.newMessage("creator-a", text))
	}
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	h.fatalIfAny(t)
	if sends.Load() < 2 {
		t.Fatalf("harness: %d send requests", sends.Load())
	}
	f.deliveredInOrderNoDLQ(t, ok, texts, "not recorded", "no longer shown", "dead-letter", "sent: the chat shows")
}
