package scraper_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRev22KHeldLastSentWithoutTimeBound: attacks on today's lastsent
// record (kept for the ledger's retention, no time bound on the check,
// processor_lastsent.go staleClickPage) that held.
//
// Promise (a) and (c): the next message to the fan is delivered once and
// not dead-lettered when (1) the creator deleted the last message sent to
// the fan by hand (the page never shows it again: past
// CHAT_FAULT_PATIENCE it is taken as deleted and clicked), (2) the
// creator wrote to the fan by hand so often that the chat page no longer
// shows the last message the scraper sent (Unknown: let through).
func TestRev22KHeldLastSentWithoutTimeBound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		after   func(f *fixture)
		wantLog string
	}{
		{"creator deleted the last message by hand", func(f *fixture) {
			f.site.DeleteSent(f.site.Sent()[0].ID)
		}, "taken as deleted by the creator"},
		{"creator wrote to the fan by hand many times", func(f *fixture) {
			f.site.ShowLatest(5)
			for i := range 8 {
				f.sendAsCreator("creator-a", "fan-1", fmt.Sprintf("by hand %d", i))
			}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// GIVEN "thanks babe" sent to fan-1, then the creator's action
			cfg := testConfig()
			f := setup(t, cfg)
			f.enqueue(f.messageTo("creator-a", "fan-1", "thanks babe"))
			if !f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 }) {
				t.Fatal("the first message was not sent")
			}
			tc.after(f)
			before := len(f.site.Sent())
			// WHEN the identical text is sent to fan-1 again
			f.enqueue(f.messageTo("creator-a", "fan-1", "thanks babe"))
			ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN it is delivered once, and nothing is dead-lettered
			if n := len(f.site.Sent()) - before; !ok || n != 1 {
				t.Fatalf("ok %t: the second message reached the site %d time(s)", ok, n)
			}
			if d := f.dlq(); len(d) != 0 {
				t.Fatalf("%d message(s) dead-lettered", len(d))
			}
			if tc.wantLog != "" && !strings.Contains(f.logs.String(), tc.wantLog) {
				t.Fatalf("the attack did not take the path it aims at: no %q in the logs", tc.wantLog)
			}
		})
	}
}
