//go:build reviewfindings

package scraper_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// chatPages403For answers every chat page 403 for d from the first chat
// page request (every fan's, the probe chat's too: a bot-protection or
// CDN rule on the chat route); the session check (/api2/v2/users/me),
// sends and every other request go to the origin.
func chatPages403For(d time.Duration) func(http.Handler) http.Handler {
	var once sync.Once
	var mu sync.Mutex
	var start time.Time
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				once.Do(func() { mu.Lock(); start = time.Now(); mu.Unlock() })
				mu.Lock()
				in := time.Since(start) < d
				mu.Unlock()
				if in {
					http.Error(w, "<!doctype html><title>Access denied</title>", http.StatusForbidden)
					return
				}
			}
			origin.ServeHTTP(w, r)
		})
	}
}

// TestRev22KBSiteWide403OnChatPagesNeverDeadLetters:
//
// Promise (c): a refusing site is never the message's fault; a message
// reaches a DLQ only for its own fault; a refusal about one fan stays with
// that fan.
//
// Fault: for 3 s every chat page answers 403 (every fan's and the probe
// chat's alike: a bot-protection or CDN rule on the chat route, a
// front-end deploy's auth middleware), while the web app's "who am I"
// (sessionCheck.path) answers as always; then the site is healthy.
//
// Code path: onlyfans/sender_click.go openChat returns a chat page's
// sessionCheck status (profile: [403]) as an early Result (nothing
// clicked; today's fix 9301357 routes only the other 4xx to
// ErrChatUnusable, the probe deciding); processor_send.go afterClick →
// judge → SessionCheck.Ambiguous → processor_session.go refused → the
// session check says good → DeadLettered recipient_refused at once, with
// no look at the probe chat. Every creator's head message in flight
// during the 3 s goes to the DLQ as "a refusal for this fan" (the same
// in a read-back: processor_readback.go unreadable → refused).
//
// Suggested fix: a chat page (not a send) answered with a sessionCheck
// status after the session checked good is an unusable chat like any
// other 4xx: open the probe chat (chatFault); the probe answering the same
// is the site's outage (wait, uncounted); only the fan's chat alone, seen
// so for CHAT_FAULT_PATIENCE, is this fan's refusal.
func TestRev22KBSiteWide403OnChatPagesNeverDeadLetters(t *testing.T) {
	// GIVEN two messages of creator-a and one of creator-b, and every
	// chat page answering 403 for 3 s
	cfg := testConfig()
	f := setup(t, cfg)
	f.behind(cfg, chatPages403For(3*time.Second))
	f.enqueue(f.newMessage("creator-a", "t1"), f.newMessage("creator-a", "t2"), f.newMessage("creator-b", "u1"))
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN nothing is dead-lettered and every message is delivered once,
	// in order
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("3 s of 403 chat pages (every chat's, the probe's too) dead-lettered %d message(s): %q", len(d),
			aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if a, b := strings.Join(f.site.Texts("creator-a"), ","), strings.Join(f.site.Texts("creator-b"), ","); !ok || a != "t1,t2" || b != "u1" {
		t.Fatalf("ok %t, the site has %q and %q", ok, a, b)
	}
}
