// Findings of issue 22's fourth review (fresh reviewer D), fixed: the probe
// chat that tells one fan's broken chat from a site outage.

package scraper_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// TestRev22DAHalfBrokenSiteDeadLettersItsMessagesAsOneFansBrokenChat:
//
// Promise (c): a 5xx-storming site makes messages wait, uncounted, with a
// growing capped delay; nothing reaches a DLQ for it; everything is
// delivered once afterwards.
//
// Fault: the site's page tier is half down: one of its two backends behind
// a round-robin balancer answers 502, so every other chat page load fails,
// whoever the fan (the probe chat's included). Nothing about the fan.
//
// Sequence: the fan's chat page gets the dead backend (502: ErrChatUnusable),
// the probe chat right after it gets the live one, so chatFault reads "the
// probe chat can be used: this fan's chat alone is broken" and counts a
// failure (chat_unusable); the next receive is the same sequence. After
// MaxFailures (3 here, 5 in production) the message is in the DLQ: an
// outage dead-lettered as one fan's fault. The breaker never opens either
// (the probe's success counts for it each time).
func TestRev22DAHalfBrokenSiteDeadLettersItsMessagesAsOneFansBrokenChat(t *testing.T) {
	t.Parallel()
	// GIVEN a site whose every other chat page load answers 502, and one
	// message of creator-a
	cfg := testConfig()
	f := setup(t, cfg)
	var failing atomic.Bool
	failing.Store(true)
	f.behind(cfg, everyOtherChatPageAnswers(http.StatusBadGateway, &failing))
	f.compress()
	m := f.newMessage("creator-a", "through a half-broken site")
	f.enqueue(m)
	// WHEN the scraper runs for 10 receives of the half outage (MaxFailures
	// is 3; every visibility applied as 0), or until the message went
	// through a live backend (the queue empty: nothing more to wait for)
	f.runUntil(90*time.Second, func() bool {
		return len(f.compressed.Asked()) >= 10 || f.queueCount(f.queues.Workflows.DLQURL) > 0 || f.queueCount(f.queues.Workflows.URL) == 0
	})
	// THEN nothing is dead-lettered: a 5xx on every other page of every
	// chat is the site's outage, not this fan's
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("after %d receives of a half-broken site the message is in the DLQ: %q", len(f.compressed.Asked()),
			aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	// WHEN the site heals
	failing.Store(false)
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN it is delivered once
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("after the outage: ok %t, the fan has %q", ok, got)
	}
}
