// Issue 22, seventh review (fresh reviewer G): a site whose every chat
// shows its composer disabled (read-only mode).

package scraper_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// TestRev22GCASiteWideDisabledComposerNeverDeadLetters:
//
// Promise (c): a half-broken site never sends a message to a DLQ and never
// counts toward its failures; only an answer about this message does.
//
// Every chat page (the probe chat's too) renders its composer disabled: a
// site in a read-only mode, or whose real-time service the composer waits
// for is down. Nothing is clicked and nothing about this message was
// answered, yet typing times out (Fill waits for an editable element),
// the sender returns ErrTimeout without ErrSiteDown (sender.go prepare ->
// act -> classify), and afterClick counts it (processor_send.go: case
// ErrTimeout -> p.fail ClassTimeout): after MaxFailures receives the
// message is in the DLQ. The probe chat is never asked (chatFault runs for
// ErrChatUnusable only).
func TestRev22GCASiteWideDisabledComposerNeverDeadLetters(t *testing.T) {
	t.Parallel()
	// GIVEN a site whose every chat shows a disabled composer, and one
	// message of creator-a
	cfg := testConfig()
	f := setup(t, cfg)
	f.behind(cfg, rewriteChatPages(func(html string) string {
		return strings.Replace(html, `<textarea id="message-input"`, `<textarea id="message-input" disabled`, 1)
	}))
	f.compress()
	f.enqueue(f.newMessage("creator-a", "while the composer is read-only"))
	// WHEN the scraper runs for 6 receives of it
	f.runUntil(60*time.Second, func() bool {
		return len(f.compressed.Asked()) >= 6 || f.queueCount(f.queues.Workflows.DLQURL) > 0
	})
	// THEN nothing is dead-lettered and no failure is counted
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("a site-wide disabled composer dead-lettered the message after %d receives: %q", len(f.compressed.Asked()),
			aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if n := strings.Count(f.logs.String(), `"error_class":"timeout"`); n != 0 {
		t.Fatalf("a site-wide disabled composer counted %d failure(s) of the message (timeout)", n)
	}
}

// TestRev22GCBSiteWideOverlayOverTheSendButtonNeverDeadLetters:
//
// Promise (c), the same gap at the click: every chat page (the probe
// chat's too) shows an overlay over its send button (a site-wide banner,
// a "new version available" modal). Typing works, the gate admits and the
// attempt mark is written, the click times out with no send request
// issued (sender_click.go click: "Nothing left the page: not sent"), and
// afterClick counts the ErrTimeout (processor_send.go: case ErrTimeout ->
// p.fail ClassTimeout): the message is dead-lettered after MaxFailures
// (each redelivery first waits out the late-commit horizon of a click
// that issued nothing).
func TestRev22GCBSiteWideOverlayOverTheSendButtonNeverDeadLetters(t *testing.T) {
	t.Parallel()
	// GIVEN a site whose every chat page has an overlay over everything,
	// and a short horizon (nothing ever reaches the site here)
	cfg := shortHorizon()
	f := setup(t, cfg)
	f.behind(cfg, rewriteChatPages(func(html string) string {
		return strings.Replace(html, `</body>`, `<div id="banner" style="position:fixed;inset:0;z-index:9;background:rgba(0,0,0,.1)">We have updated our terms</div></body>`, 1)
	}))
	f.compress()
	f.enqueue(f.newMessage("creator-a", "behind a site-wide banner"))
	// WHEN the scraper runs for 30 receives of it
	f.runUntil(60*time.Second, func() bool {
		return len(f.compressed.Asked()) >= 30 || f.queueCount(f.queues.Workflows.DLQURL) > 0
	})
	// THEN nothing is dead-lettered and no failure is counted
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("a site-wide overlay over the send button dead-lettered the message after %d receives: %q", len(f.compressed.Asked()),
			aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if n := strings.Count(f.logs.String(), `"error_class":"timeout"`); n != 0 {
		t.Fatalf("a site-wide overlay over the send button counted %d failure(s) of the message (timeout)", n)
	}
}
