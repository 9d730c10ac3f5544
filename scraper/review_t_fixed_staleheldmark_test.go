package scraper_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/scraper"
)

// visibilityFailingSQS refuses one ChangeMessageVisibility that delays a
// message (armed; the SDK's retries exhausted: throttled); the message
// comes back after the queue's visibility (the heartbeat's 60 s in
// production, well inside the 5 min LateCommitHorizon), compressed to
// 3 s (time for the test to stop the refused task's receives). lose runs
// at that moment.
type visibilityFailingSQS struct {
	scraper.SQSAPI
	armed   *atomic.Bool
	refused *atomic.Int64
	lose    func()
}

func (s visibilityFailingSQS) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if in.VisibilityTimeout > 0 && s.armed.CompareAndSwap(true, false) {
		if s.lose != nil {
			s.lose()
		}
		if _, err := s.SQSAPI.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: in.QueueUrl, ReceiptHandle: in.ReceiptHandle, VisibilityTimeout: 3}); err != nil {
			return nil, err
		}
		s.refused.Add(1)
		return nil, errors.New("ThrottlingException: Rate exceeded")
	}
	return s.SQSAPI.ChangeMessageVisibility(ctx, in, o...)
}

// TestRev22TAStaleMemoryMarkOfAnotherTasksEarlierClickHidesTheMarkStoresLaterClick
// (review 22 T, finding A):
//
// Promise (a): every accepted message reaches the fan exactly once; (c):
// outages (the mark store refusing writes, Redis failing over to an
// empty replica, SQS refusing a call) are waited out.
//
// Fault: one message, two tasks (A and B, each its own Processor and
// browser; one Redis, one mark store, one queue).
//  1. Task A clicks (M1); the send request hangs and never commits. The
//     mark store refuses writes past ANSWERED_PROOF_PATIENCE while A lets
//     go: keepAttempt keeps M1 in A's memory (heldProofs) and Redis.
//  2. The mark store is back. Task B gets the message: Redis's M1, read
//     back not sent past its horizon, settled not sent (B's memory, not
//     A's, drops it), clicked again (M2). M2's request hangs and its
//     origin commits it 12 s after the click (inside the 15 s horizon).
//     B writes M2 to Redis and the mark store (it takes it), and releases
//     the message for M2's horizon; SQS refuses that one visibility change
//     (the message returns after the queue's visibility), and Redis fails
//     over to an empty replica.
//  3. Task A gets the message again before M2 landed.
//
// Why: Redis holds no attempt mark, so heldProof (processor_proofs.go)
// gives A its memory's M1 as the unresolved click: st.Attempting is set,
// so checkMarkStore (processor_decide.go) never reads the mark store,
// which holds B's later M2. recover reads back against M1: no copy yet,
// and M1's horizon is long past, so A settles the message not sent, and
// keepMark (c.stale) deletes the mark store's M2. Every trace of M2 is
// gone; the message is clicked again (after the gate's fence) and M2
// lands too: the fan has it twice. heldProof's "a mark Redis holds wins
// over a plain one from memory (it is as recent, or another task's later
// click)" covers Redis only: a mark from memory is at best as recent as
// this task's own click, and another task's later click may be held by
// the mark store alone.
//
// Fixed, twice over (each alone passes this test): answeredSent
// (processor_lastsent.go), which recover runs before any read-back, reads
// back against the mark store's mark when its click is later than the one
// from Redis or memory; and the mark store's Delete (marks.go) takes the
// latest ClickedAt the processing settled and leaves a later click's mark,
// a sent one and an Answered one (conditional DeleteItem).
func TestRev22TAStaleMemoryMarkOfAnotherTasksEarlierClickHidesTheMarkStoresLaterClick(t *testing.T) {
	cfg := testConfig()
	f := setup(t, cfg)
	ddbFailing, ddbRefused := f.markStoreRefusingWrites()
	var h harnessErrors
	var posts atomic.Int64
	committed := make(chan struct{})
	armed, visRefused := new(atomic.Bool), new(atomic.Int64)
	front := func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				origin.ServeHTTP(w, r)
				return
			}
			switch posts.Add(1) {
			case 1: // A's click: hangs, never committed
				ddbFailing.Store(true)
				select {
				case <-r.Context().Done():
				case <-time.After(20 * time.Second):
				}
				return
			case 2: // B's click: committed 12 s later
				armed.Store(true)
				commitLater(origin, r, 12*time.Second, committed)
				select {
				case <-r.Context().Done():
				case <-time.After(12 * time.Second):
				}
				return
			}
			origin.ServeHTTP(w, r)
		})
	}
	lose := func() { h.check(f.redis.Client().FlushAll(context.Background()).Err()) }
	consA, consB := f.twoTasks(cfg, front, nil, nil, visibilityFailingSQS{SQSAPI: f.aws.SQS, armed: armed, refused: visRefused, lose: lose})
	m := f.newMessage("creator-a", "sent twice by a stale memory mark")
	f.enqueue(m)

	// 1. A clicks M1; the mark store refuses it past the patience.
	f.leaveInMemory(t, consA, 60*time.Second, ddbRefused)
	ddbFailing.Store(false)

	// 2. B settles M1 not sent, clicks M2, stores it; its release is
	// refused and Redis is emptied.
	if !runUntilThenStop(consB, 90*time.Second, func() bool { return visRefused.Load() > 0 }) {
		t.Fatalf("harness: B never released after a second click (%d send requests):\n%s", posts.Load(), f.logs)
	}
	h.fatalIfAny(t)
	stored, found, err := f.marks.Get(context.Background(), m.MessageID)
	if err != nil || !found || stored.Sent || stored.Mark.ClickedAt == 0 {
		t.Fatalf("harness: the mark store does not hold B's M2: %+v %t %v", stored, found, err)
	}
	select {
	case <-committed:
		t.Fatalf("harness: M2 committed before A got the message again")
	default:
	}

	// 3. A gets it again.
	ok := runUntilThenStop(consA, 90*time.Second, func() bool {
		select {
		case <-committed:
			return f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	if got, dlq := f.site.Texts("creator-a"), len(f.dlq()); !ok || len(got) != 1 || dlq != 0 {
		t.Fatalf("ok %t: the fan has %q (%d send requests at the front), %d dead-lettered; the scraper's word:\n%s",
			ok, got, posts.Load(), dlq, linesWith(f.logs.String(), "mark store", "Redis lost", "sending", "unresolved", "not sent", "dead-letter", "interrupted", "may still land", "fenced"))
	}
}
