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

// Issue 22, tenth review (fresh reviewer J): a site that refuses every
// chat page with a 4xx for a moment (a front-end deploy whose router
// misses the chat route, a CDN answering 404 from a bad config).

// chatPagesAnswerFor answers every chat page status for d from the first
// chat page request (every fan's, the probe chat's too: a front-end
// deploy missing the route, a CDN's or bot protection's rule on it); the
// session check, sends and every other request go to the origin.
func chatPagesAnswerFor(status int, d time.Duration) func(http.Handler) http.Handler {
	var once sync.Once
	var start time.Time
	var mu sync.Mutex
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				once.Do(func() { mu.Lock(); start = time.Now(); mu.Unlock() })
				mu.Lock()
				in := time.Since(start) < d
				mu.Unlock()
				if in {
					http.Error(w, "<!doctype html><title>"+http.StatusText(status)+"</title>", status)
					return
				}
			}
			origin.ServeHTTP(w, r)
		})
	}
}

// TestRev22JDASiteWide404OnChatPagesNeverDeadLetters:
//
// Promise (c): a refusing site is never the message's fault; a message
// reaches a DLQ only for its own fault; the creator's messages are
// delivered once, in order, afterwards.
//
// Fault: for 3 s every chat page answers 404 (every fan's and the probe
// chat's alike: nothing about one fan or one message), then the site is
// healthy.
//
// Code path: onlyfans/sender_click.go openChat returns a chat page's 4xx
// as an early Result (Status 404, nothing clicked); processor_send.go
// afterClick → judge: not 429, not 401, not a sessionCheck status
// (profile: [403]) → DeadLettered ClassClient "site refused the message
// with 404", at once, without the probe chat that chatFault consults for
// an unusable page (the same 4xx in a read-back: processor_readback.go
// unreadable's last StatusError case). Every creator's head message in
// flight during the 3 s goes to the DLQ, and the creator's later
// messages overtake it.
//
// Suggested fix: a chat page's 4xx (other than 401/429 and the session
// statuses, which have their own checks) is not a refusal of a send (no
// send request was made): open the probe chat first, as chatFault does;
// if it answers the same (or any non-2xx) it is the site's outage (wait,
// uncounted); only a 4xx the fan's chat alone gives, seen so for
// CHAT_FAULT_PATIENCE, is the message's fault.
func TestRev22JDASiteWide404OnChatPagesNeverDeadLetters(t *testing.T) {
	t.Parallel()
	// GIVEN two messages of creator-a and one of creator-b, and every
	// chat page answering 404 for 3 s
	cfg := testConfig()
	f := setup(t, cfg)
	f.behind(cfg, chatPagesAnswerFor(http.StatusNotFound, 3*time.Second))
	f.enqueue(f.newMessage("creator-a", "t1"), f.newMessage("creator-a", "t2"), f.newMessage("creator-b", "u1"))
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN nothing is dead-lettered and every message is delivered once,
	// in order
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("3 s of 404 chat pages (every chat's, the probe's too) dead-lettered %d message(s): %q", len(d),
			aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if a, b := strings.Join(f.site.Texts("creator-a"), ","), strings.Join(f.site.Texts("creator-b"), ","); !ok || a != "t1,t2" || b != "u1" {
		t.Fatalf("ok %t, the site has %q and %q", ok, a, b)
	}
}

// TestAFanWhoseChatAnswers404AfterAnUnknownClickReachesTheDLQWithItsReason:
//
// Promise: a refusal about one fan stays with that fan, and nothing waits
// for the backstop. "ok"'s send to fan-gone meets a 502 (nothing
// recorded) and from then on fan-gone's chat page answers 404 (the
// account deleted), the probe chat and fan-1's chat working. The read-back
// of the unknown click cannot read the chat: a 404 chat page is an
// unusable chat (review 22 J finding D), and the probe tells it is this
// fan's alone, so after the patience it counts as chat_unusable, and "ok"
// reaches the DLQ with that reason (never clicked again) while the
// creator's message to fan-1 is delivered.
func TestAFanWhoseChatAnswers404AfterAnUnknownClickReachesTheDLQWithItsReason(t *testing.T) {
	t.Parallel()
	// GIVEN creator-a's message to fan-gone, whose send gets a 502 and
	// whose chat answers 404 from then on, then one to fan-1
	cfg := testConfig()
	f := setup(t, cfg)
	var gone atomic.Bool
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodPost && r.URL.Path == "/api2/v2/chats/fan-gone/messages" && gone.CompareAndSwap(false, true):
				http.Error(w, "bad gateway", http.StatusBadGateway)
			case r.Method == http.MethodGet && (r.URL.Path == "/my/chats/chat/fan-gone" || r.URL.Path == "/api2/v2/chats/fan-gone/messages") && gone.Load():
				// the chat document, and the single-page app's history fetch
				http.Error(w, "no such user", http.StatusNotFound)
			default:
				origin.ServeHTTP(w, r)
			}
		})
	})
	f.compress()
	f.enqueue(f.messageTo("creator-a", "fan-gone", "ok"), f.messageTo("creator-a", "fan-1", "to a working chat"))
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(120*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN fan-1 has its message, "ok" was sent to nobody, and it waits in
	// the DLQ with its reason
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "to a working chat" {
		t.Fatalf("ok %t after %d receives: the site has %q", ok, len(f.compressed.Asked()), got)
	}
	d := f.dlq()
	if len(d) != 1 {
		t.Fatalf("the DLQ holds %d message(s), want \"ok\"", len(d))
	}
	if reason := aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue); !strings.Contains(reason, scraper.ClassChatUnusable) {
		t.Fatalf("\"ok\" dead-lettered with %q, want %s", reason, scraper.ClassChatUnusable)
	}
}
