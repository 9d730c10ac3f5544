package handler_test

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/featureflag"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/test/harness"
	"github.com/huntaze/message-pipeline/test/wait"
)

// drainIntake polls until the intake queue holds nothing (denied records
// come back when their window has room; bounded).
func drainIntake(t *testing.T, f *fixture) {
	t.Helper()
	wait.For(t, 30*time.Second, 50*time.Millisecond, "the intake queue to empty", func() bool {
		pollOnce(t, f)
		return harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.URL) == 0
	})
}

func texts(msgs []message.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Content
	}
	return out
}

// Flipping RATE_LIMITER_ENABLED off while a creator's backlog waits in the
// intake queue (records denied, invisible until the window has room): the
// backlog and the messages accepted after the flip reach the workflows
// queue in acceptance order, the later ones forwarded without the check.
func TestFlagOffWhileABacklogWaitsKeepsTheCreatorsOrder(t *testing.T) {
	f := setup(t, scaled(3, 1500*time.Millisecond), options{})
	sw := &featureflag.Switch{}
	sw.Set("true")
	f.handler.UseFlag(featureflag.New(sw, true, 0, time.Now, slog.New(slog.DiscardHandler)))
	var msgs []message.Message
	for i := range 10 {
		msgs = append(msgs, newMessage(t, "creator-a", i))
	}
	f.enqueue(t, msgs[:7]...)
	for range 4 { // fauxqs hands out one record per group per receive
		pollOnce(t, f) // 3 approved, then the 4th denied: the group waits for the window
	}
	if d := harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.URL); d != 4 || !strings.Contains(f.logs.String(), `"allowed":false`) {
		t.Fatalf("intake holds %d after the first window, want 4 waiting behind a denial", d)
	}
	sw.Set("false")
	f.enqueue(t, msgs[7:]...) // accepted after the flip
	drainIntake(t, f)
	got := contents(t, harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL))
	if !slices.Equal(got, texts(msgs)) {
		t.Fatalf("workflows order after flipping off:\n got %q\nwant %q", got, texts(msgs))
	}
	if !strings.Contains(f.logs.String(), `"rate_checked":false`) || !strings.Contains(f.emf.String(), "rate_limit_unchecked_count") {
		t.Fatal("no record was forwarded unchecked after the flip")
	}
}

// Flipping it back on while messages accepted with the flag off still wait
// in the intake queue: they are rate-checked from then on, behind nothing
// and ahead of the later ones; the order is kept and the window holds.
func TestFlagOnWhileMessagesAcceptedOffWaitKeepsTheCreatorsOrder(t *testing.T) {
	f := setup(t, scaled(3, 1500*time.Millisecond), options{})
	sw := &featureflag.Switch{}
	sw.Set("false")
	f.handler.UseFlag(featureflag.New(sw, true, 0, time.Now, slog.New(slog.DiscardHandler)))
	var msgs []message.Message
	for i := range 10 {
		msgs = append(msgs, newMessage(t, "creator-b", i))
	}
	f.enqueue(t, msgs[:6]...) // accepted while off, not forwarded yet
	sw.Set("true")
	f.enqueue(t, msgs[6:]...)
	drainIntake(t, f)
	if strings.Contains(f.logs.String(), `"rate_checked":false`) || !strings.Contains(f.logs.String(), `"allowed":false`) {
		t.Fatal("records were not rate-checked after the flag came back on")
	}
	got := contents(t, harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL))
	if !slices.Equal(got, texts(msgs)) {
		t.Fatalf("workflows order after flipping on:\n got %q\nwant %q", got, texts(msgs))
	}
}
