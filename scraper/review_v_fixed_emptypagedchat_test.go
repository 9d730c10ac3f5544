package scraper_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper"
)

// TestRev22VAFirstMessageToAnEmptyPagedChatIsDeadLetteredAfterOne502
// (review 22 V, finding A):
//
// Promise (a): every accepted message reaches the fan (never lost); (c):
// the site's 5xx is an outage, never the message's fault: it never
// dead-letters a message.
//
// Fault: a site whose chat pages show only the latest messages (the fake
// site's ShowLatest, one of the two modes docs/scraper.md supports; such
// a page never shows historyStart, not even for an empty chat). The first
// message to a fan (an empty chat) meets one 502 that did not commit.
//
// Why: the click's mark is of an empty chat (Count 0). Since 3370f8d,
// Mark.JudgeChat → judgeFromStart reads "not sent" only on a chat that
// shows its start now (complete); a paged page never does, so every
// read-back of the still empty chat is Unknown ("the copy may have
// scrolled out") although the chat shows no message at all: a copy
// cannot scroll out of a page showing the latest messages without a
// later message standing in its place. The read-back is readable and
// conclusive, yet it counts outcome_unknown failures until MaxFailures
// and the never-sent message is dead-lettered (lost to the fan). Before
// 3370f8d it was read "not sent" and clicked again.
//
// A correct system reads an empty mark against a chat that shows nothing
// of the creator's now as "not sent" (nothing shown: nothing scrolled
// out), keeping Unknown for a non-complete chat that shows other
// messages, and delivers the message once with nothing dead-lettered.
//
// Fixed: judgeFromStart reads a chat showing no message at all, when the
// click's page did not show its start either (a page that never does),
// as Empty: the processor waits on it uncounted and takes it for not sent
// once seen so for ChatFaultPatience (review 22 W C: at once, an empty
// history page sent a message twice); one that showed its start at the
// click and no longer does stays Unknown (review 22 U C's scroll-out).
func TestRev22VAFirstMessageToAnEmptyPagedChatIsDeadLetteredAfterOne502(t *testing.T) {
	for _, ids := range []bool{false, true} {
		// With the site's ids too (docs/scraper.md: historyId closes the
		// residuals): judgeFromStart runs before the id is looked at.
		t.Run(map[bool]string{false: "without ids", true: "with ids"}[ids], func(t *testing.T) {
			cfg := shortHorizon()
			f := setup(t, cfg)
			f.site.ShowLatest(2)
			if ids {
				f.withIDs(cfg)
			}
			f.site.InjectFaults(fakesite.Fault{Status: 502}) // not committed
			m := f.newMessage("creator-a", "hey, first message to you")
			f.enqueue(m)
			ok := f.runUntil(90*time.Second, func() bool {
				return f.queueCount(f.queues.Workflows.URL) == 0
			})
			got, dlq := f.site.Texts("creator-a"), f.dlq()
			var reasons []string
			for _, d := range dlq {
				reasons = append(reasons, aws.ToString(d.MessageAttributes[scraper.AttrFailureReason].StringValue))
			}
			if !ok || len(got) != 1 || len(dlq) != 0 {
				t.Fatalf("ok %t: the fan has %q (%d send requests), dead-lettered %q; the scraper's word:\n%s",
					ok, got, f.site.SendRequests(), reasons,
					linesWith(f.logs.String(), "not sent", "unknown", "scrolled out", "dead-letter", "message processed", "may still land"))
			}
		})
	}
}
