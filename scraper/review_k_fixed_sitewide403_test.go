package scraper_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper"
)

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
// Fixed (processor_session.go chatRefused: the session first, then the
// probe). Suggested then: a chat page (not a send) answered with a sessionCheck
// status after the session checked good is an unusable chat like any
// other 4xx: open the probe chat (chatFault); the probe answering the same
// is the site's outage (wait, uncounted); only the fan's chat alone, seen
// so for CHAT_FAULT_PATIENCE, is this fan's refusal.
func TestRev22KBSiteWide403OnChatPagesNeverDeadLetters(t *testing.T) {
	t.Parallel()
	// GIVEN two messages of creator-a and one of creator-b, and every
	// chat page answering 403 for 3 s
	cfg := testConfig()
	f := setup(t, cfg)
	f.behind(cfg, chatPagesAnswerFor(http.StatusForbidden, 3*time.Second))
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

// chatPages403AfterFirstSendFor answers every chat page 403 for d from the
// end of the first send request (the route rule of chatPagesAnswerFor, met by
// the read-back of that send).
func chatPages403AfterFirstSendFor(d time.Duration) func(http.Handler) http.Handler {
	var mu sync.Mutex
	var start time.Time
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				origin.ServeHTTP(w, r)
				mu.Lock()
				if start.IsZero() {
					start = time.Now()
				}
				mu.Unlock()
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				mu.Lock()
				in := !start.IsZero() && time.Since(start) < d
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

// TestRev22KBASiteWide403DuringAReadBackNeverDeadLettersASentMessage:
//
// Promise (a) and (c): an unknown send outcome is settled only by reading
// the fan's chat back; a refusing site is never the message's fault.
//
// Fault: the send of "hi" gets a 502 from a gateway whose origin recorded
// it (the fan has it), and for 3 s from then every chat page answers 403
// (the route rule of TestRev22KBSiteWide403OnChatPagesNeverDeadLetters),
// the session check answering as always.
//
// Code path: processor_send.go unknownClick → readBack → sender_history.go
// returns the chat page's 403 as a StatusError → processor_readback.go
// unreadable → SessionCheck.Ambiguous → refused → DeadLettered
// recipient_refused "the outcome of the click is unknown", at once: a
// message the fan has is in the DLQ as refused for that fan (a redrive
// sends it twice), never read back, without a look at the probe chat.
//
// Fixed (unreadable → chatRefused). Suggested then: as for the send path, a chat page's sessionCheck status
// in a read-back is an unusable chat (chatFault, the probe decides); the
// outcome stays unknown and is read back once the chat can be read.
func TestRev22KBASiteWide403DuringAReadBackNeverDeadLettersASentMessage(t *testing.T) {
	t.Parallel()
	// GIVEN "hi" to fan-1, its send answered 502 after the origin
	// recorded it, then 3 s of 403 on every chat page
	cfg := testConfig()
	f := setup(t, cfg)
	f.behind(cfg, chatPages403AfterFirstSendFor(3*time.Second))
	f.site.InjectFaults(fakesite.Fault{Commit: true, Status: 502})
	f.enqueue(f.messageTo("creator-a", "fan-1", "hi"))
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has "hi" once and nothing is dead-lettered
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("a read-back meeting 3 s of 403 chat pages dead-lettered %d message(s) the fan has %d time(s): %q", len(d), len(f.site.Texts("creator-a")),
			aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "hi" {
		t.Fatalf("ok %t, the site has %q", ok, got)
	}
}
