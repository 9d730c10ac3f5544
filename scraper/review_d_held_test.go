// Attacks of issue 22's fourth review (fresh reviewer D) that the scraper
// withstood: kept as tests of the promises they attacked.

package scraper_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
	scrapersetup "github.com/huntaze/message-pipeline/scraper/setup"
)

// TestRev22DHeldAHeldSendRedeliveredAgainAndAgainBeforeItsHorizonIsSentOnce:
// promise (a) with the visibility of a held message expiring early (every
// visibility applied as 0: a consumer or an operator making it visible):
// the send gets no answer and lands 12 s later, inside the horizon (15 s).
// Each early receive reads the chat back, finds nothing yet and waits
// again, uncounted, with the mark kept; once it lands, the message is
// already sent. Never clicked again, never counted, never dead-lettered.
func TestRev22DHeldAHeldSendRedeliveredAgainAndAgainBeforeItsHorizonIsSentOnce(t *testing.T) {
	t.Parallel()
	// GIVEN a front whose first send request is answered never and
	// committed 12 s later, and every visibility applied as 0
	cfg := testConfig()
	f := setup(t, cfg)
	committed := make(chan struct{})
	f.behind(cfg, commitAfterTheClientLeft(12*time.Second, committed))
	f.compress()
	m := f.newMessage("creator-a", "redelivered while it may still land")
	f.enqueue(m)
	// WHEN the scraper runs until the queue is empty and the request landed
	ok := f.runUntil(60*time.Second, func() bool {
		select {
		case <-committed:
			return f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	// THEN the fan has it once, after more than one early read-back, with
	// no failure counted and nothing dead-lettered
	st, _ := f.ledger.State(context.Background(), m.MessageID, m.CreatorKey())
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 || f.site.SendRequests() != 1 {
		t.Fatalf("ok %t: the fan has %q from %d send requests", ok, got, f.site.SendRequests())
	}
	if st.Failures != 0 || len(f.dlq()) != 0 {
		t.Fatalf("ledger %+v, DLQ not empty", st)
	}
	if n := len(f.compressed.Asked()); n < 2 {
		t.Fatalf("only %d visibility changes: the attack needs redeliveries before the horizon", n)
	}
}

// TestRev22DHeldAMessageToTheProbeChatsOwnFanWhoseChatIsBrokenWaitsUncounted:
// promise (c): a message to the probe chat's own fan (probeChat.fan,
// `onlyfans`) whose chat answers 500 cannot be told from the site's
// outage (the probe would open the same broken chat): it waits,
// uncounted, and nothing reaches the DLQ.
func TestRev22DHeldAMessageToTheProbeChatsOwnFanWhoseChatIsBrokenWaitsUncounted(t *testing.T) {
	t.Parallel()
	// GIVEN the probe fan's own chat answering 500, and a message to it
	cfg := testConfig()
	f := setup(t, cfg)
	probe := scraperProbeFan(t)
	f.behind(cfg, brokenChatFor(probe, func(w http.ResponseWriter, _ string) {
		http.Error(w, "conversation failed to load", http.StatusInternalServerError)
	}))
	f.compress()
	m := f.messageTo("creator-a", probe, "to the probe chat's fan")
	f.enqueue(m)
	// WHEN the scraper runs for 8 receives (MaxFailures is 3)
	f.runUntil(90*time.Second, func() bool {
		return len(f.compressed.Asked()) >= 8 || f.queueCount(f.queues.Workflows.DLQURL) > 0
	})
	// THEN it waits uncounted: nothing dead-lettered, no failure, not sent
	st, _ := f.ledger.State(context.Background(), m.MessageID, m.CreatorKey())
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("dead-lettered: %q", aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if st.Failures != 0 || len(f.site.Sent()) != 0 || len(f.compressed.Asked()) < 8 {
		t.Fatalf("ledger %+v, sent %d, %d receives", st, len(f.site.Sent()), len(f.compressed.Asked()))
	}
}

// scraperProbeFan is the default profile's probe chat fan.
func scraperProbeFan(t *testing.T) string {
	t.Helper()
	d, err := scrapersetup.Sender(scrapersettings.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if d.Profile.ProbeChat.Fan == "" {
		t.Fatal("the default profile names no probe chat")
	}
	return d.Profile.ProbeChat.Fan
}
