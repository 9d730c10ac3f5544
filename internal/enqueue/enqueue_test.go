package enqueue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/enqueue"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/test/harness"
)

// entryFailer passes calls to fauxqs except the entries whose message text
// is in failing: SQS answers those as failed entries (not sender fault, so
// retried) while it queues the rest of the same call, as AWS does. fauxqs
// never fails one entry alone, hence this double.
type entryFailer struct {
	*sqs.Client
	mu      sync.Mutex
	failing map[string]int // text -> failures left (-1: always)
	calls   [][]string     // texts per call, in order
}

func text(body string) string {
	m, _ := message.Parse([]byte(body))
	return m.Content
}

func (f *entryFailer) take(t string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.failing[t]
	if !ok || n == 0 {
		return false
	}
	if n > 0 {
		f.failing[t] = n - 1
	}
	return true
}

func (f *entryFailer) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, o ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	pass := *in
	pass.Entries = nil
	var failed []sqstypes.BatchResultErrorEntry
	var texts []string
	for _, e := range in.Entries {
		texts = append(texts, text(aws.ToString(e.MessageBody)))
		if f.take(text(aws.ToString(e.MessageBody))) {
			failed = append(failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected entry failure")})
			continue
		}
		pass.Entries = append(pass.Entries, e)
	}
	f.mu.Lock()
	f.calls = append(f.calls, texts)
	f.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	if len(pass.Entries) > 0 {
		var err error
		if out, err = f.Client.SendMessageBatch(ctx, &pass, o...); err != nil {
			return nil, err
		}
	}
	out.Failed = append(out.Failed, failed...)
	return out, nil
}

func (f *entryFailer) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	t := text(aws.ToString(in.MessageBody))
	f.mu.Lock()
	f.calls = append(f.calls, []string{t})
	f.mu.Unlock()
	if f.take(t) {
		return nil, errors.New("injected: InternalError")
	}
	return f.Client.SendMessage(ctx, in, o...)
}

func msgs(t *testing.T, spec ...string) []message.Message {
	t.Helper()
	var out []message.Message
	for _, s := range spec { // "creator:text"
		var c, txt string
		fmt.Sscanf(s, "%s %s", &c, &txt)
		m, err := message.New("user-1", "fan-1", txt, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		m.CreatorID = c
		out = append(out, m)
	}
	return out
}

// byCreator drains the intake queue and returns each creator's texts in
// queue order.
func byCreator(t *testing.T, q *harness.Fauxqs, url string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range harness.Drain(t, q.SQS, url) {
		msg, _ := message.Parse([]byte(aws.ToString(m.Body)))
		out[msg.CreatorKey()] = append(out[msg.CreatorKey()], msg.Content)
	}
	return out
}

// Issue 23: an entry failed in the middle of a batch was retried alone
// after its creator's later entries were queued (m1, m2, m0). Now a call
// never carries two entries of one creator, the failed entry is retried
// before its creator's next, and other creators are unaffected.
func TestAnEntryFailedInTheMiddleIsRetriedBeforeItsCreatorsLaterOnes(t *testing.T) {
	q := harness.StartFauxqs(t)
	sys := q.CreateQueues(t, "test")
	client := &entryFailer{Client: q.SQS, failing: map[string]int{"a1": 2}}
	s := enqueue.NewSender(client, sys.RateLimiter.URL, time.Millisecond)
	batch := msgs(t, "creator-a a0", "creator-b b0", "creator-a a1", "creator-b b1", "creator-a a2", "creator-c c0", "creator-b b2")
	for i, err := range s.Send(context.Background(), batch) {
		if err != nil {
			t.Fatalf("message %d: %v (a1's failures were transient)", i, err)
		}
	}
	got := byCreator(t, q, sys.RateLimiter.URL)
	want := map[string][]string{"creator-a": {"a0", "a1", "a2"}, "creator-b": {"b0", "b1", "b2"}, "creator-c": {"c0"}}
	for c, w := range want {
		if !slices.Equal(got[c], w) {
			t.Errorf("%s queued %q, want %q", c, got[c], w)
		}
	}
	for _, call := range client.calls {
		seen := map[byte]bool{}
		for _, txt := range call {
			if seen[txt[0]] {
				t.Fatalf("one call carried two entries of one creator: %q", call)
			}
			seen[txt[0]] = true
		}
	}
}

// When the entry keeps failing, it and every later message of its creator
// fail (the later ones never sent: ErrNotSent), so the caller can store
// them in order; other creators' messages are queued.
func TestAnEntryThatKeepsFailingTakesItsCreatorsLaterOnesWithIt(t *testing.T) {
	q := harness.StartFauxqs(t)
	sys := q.CreateQueues(t, "test")
	client := &entryFailer{Client: q.SQS, failing: map[string]int{"a1": -1}}
	s := enqueue.NewSender(client, sys.RateLimiter.URL, time.Millisecond)
	batch := msgs(t, "creator-a a0", "creator-b b0", "creator-a a1", "creator-b b1", "creator-a a2")
	errs := s.Send(context.Background(), batch)
	if errs[0] != nil || errs[1] != nil || errs[3] != nil {
		t.Fatalf("errors %v: a0, b0, b1 must be queued", errs)
	}
	var ee *enqueue.Error
	if !errors.As(errs[2], &ee) || ee.Attempts != enqueue.MaxAttempts {
		t.Fatalf("a1: %v, want a failure after %d attempts", errs[2], enqueue.MaxAttempts)
	}
	if !errors.Is(errs[4], enqueue.ErrNotSent) {
		t.Fatalf("a2: %v, want ErrNotSent", errs[4])
	}
	got := byCreator(t, q, sys.RateLimiter.URL)
	if !slices.Equal(got["creator-a"], []string{"a0"}) || !slices.Equal(got["creator-b"], []string{"b0", "b1"}) {
		t.Fatalf("queued %q", got)
	}
}
