package scraper_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/scraper"
)

// slowDeleteFailingSQS refuses one DeleteMessage once armed (throttled
// past the SDK's retries); the message comes back after the queue's
// visibility, compressed to 3 s (time for the test to stop the refused
// task's receives). lose runs at that moment.
type slowDeleteFailingSQS struct {
	scraper.SQSAPI
	armed   *atomic.Bool
	refused *atomic.Int64
	lose    func()
}

func (s slowDeleteFailingSQS) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if s.armed.CompareAndSwap(true, false) {
		if s.lose != nil {
			s.lose()
		}
		if _, err := s.SQSAPI.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: in.QueueUrl, ReceiptHandle: in.ReceiptHandle, VisibilityTimeout: 3}); err != nil {
			return nil, err
		}
		s.refused.Add(1)
		return nil, errors.New("ThrottlingException: Rate exceeded")
	}
	return s.SQSAPI.DeleteMessage(ctx, in, o...)
}

// TestRev22UBOlderMemoryMarkPutOverTheMarkStoresSentMarkDeadLettersASentMessage
// (review 22 U, finding B):
//
// Promise (c): outages (the mark store refusing a call, Redis emptied,
// SQS refusing a call) never dead-letter a message; (a): a sent message
// is settled sent.
//
// Fault: two messages to one fan, two tasks (A and B; one Redis, one mark
// store, one queue), the chat shown as an app shows it (its latest 3
// messages; the fan replies after the send). The first is sent; then:
//  1. Task A clicks the second (M1); the request hangs and never commits. The mark
//     store refuses writes past ANSWERED_PROOF_PATIENCE: M1 stays in A's
//     memory (heldProofs) and Redis.
//  2. The mark store is back. Task B reads M1 back not sent past its
//     horizon, clicks again (M2): the site answers 200, B settles it sent
//     and the mark store takes its sent mark. SQS refuses the delete (the
//     message returns after 3 s) and Redis is emptied. The fan replies 3
//     times.
//  3. Task A gets the message; the mark store refuses that one read
//     (GetItem: throttled).
//
// Why: heldProof gives A its memory's M1; answeredSent's read (which
// would have found the sent mark: review 22 T's "held" case) is refused,
// so recover waits, uncounted. keepMark then writes the plain M1
// (c.known(m, false): not stored) to Redis and PutItem's it over the
// stored sent item: Put's condition is only attribute_not_exists(answered)
// (a sent item has none); Delete, since T A, leaves a sent item, Put
// does not. The sent mark is gone; the next processing reads back
// against M1, whose anchor (the chat's start) the fan's replies have
// scrolled out: outcome_unknown, counted, and the sent message is
// dead-lettered after MAX_FAILURES.
//
// Fixed: DynamoMarks.Put never replaces a sent item (its condition
// includes attribute_not_exists(sentAt)): A's put of M1 leaves the sent
// mark, and the next processing's answeredSent finds it and settles the
// message sent.
func TestRev22UBOlderMemoryMarkPutOverTheMarkStoresSentMarkDeadLettersASentMessage(t *testing.T) {
	cfg := testConfig()
	f := setup(t, cfg)
	ddbFailing, ddbRefused := f.markStoreRefusingWrites()
	storeB := f.marks
	getArmed, getRefused := new(atomic.Bool), new(atomic.Int64)
	storeA := scraper.NewDynamoMarks(getRefusingDDB{DynamoDBAPI: putFailingDDB{DynamoDBAPI: f.ddbCalls, failing: ddbFailing, refused: ddbRefused}, armed: getArmed, refused: getRefused},
		attemptsTable, time.Hour, time.Now)
	var h harnessErrors
	var posts atomic.Int64
	var fanReplied atomic.Bool
	delArmed, delRefused := new(atomic.Bool), new(atomic.Int64)
	front := func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				serveRewritten(w, r, origin, func(page string) string { return chatAsAppShowsIt(page, fanReplied.Load()) })
				return
			}
			if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				origin.ServeHTTP(w, r)
				return
			}
			switch posts.Add(1) {
			case 1: // the first message: sent
			case 2: // A's click of the second: hangs, never committed
				ddbFailing.Store(true)
				select {
				case <-r.Context().Done():
				case <-time.After(20 * time.Second):
				}
				return
			case 3: // B's click: sent, answered 200
				origin.ServeHTTP(w, r)
				delArmed.Store(true)
				fanReplied.Store(true)
				return
			}
			origin.ServeHTTP(w, r)
		})
	}
	lose := func() {
		h.check(f.redis.Client().FlushAll(context.Background()).Err())
		getArmed.Store(true) // A's next mark store read is refused
	}
	consA, consB := f.twoTasks(cfg, front, storeA, storeB, slowDeleteFailingSQS{SQSAPI: f.aws.SQS, armed: delArmed, refused: delRefused, lose: lose})
	// The first message anchors the second's clicks (the chat is not
	// empty at them).
	first, m := f.newMessage("creator-a", "hi there"), f.newMessage("creator-a", "sent, then dead-lettered")
	f.enqueue(first, m)

	// 1. A clicks M1; the mark store refuses it past the patience.
	f.leaveInMemory(t, consA, 60*time.Second, ddbRefused)
	ddbFailing.Store(false)

	// 2. B settles M1 not sent, clicks M2 (sent), stores the sent mark;
	// its delete is refused and Redis is emptied.
	if !runUntilThenStop(consB, 90*time.Second, func() bool { return delRefused.Load() > 0 }) {
		t.Fatalf("harness: B's delete never refused (%d send requests):\n%s", posts.Load(), f.logs)
	}
	h.fatalIfAny(t)
	if stored, found, err := storeB.Get(context.Background(), m.MessageID); err != nil || !found || !stored.Sent {
		t.Fatalf("harness: the mark store does not hold B's sent mark: %+v %t %v", stored, found, err)
	}

	// 3. A gets it again; its first mark store read is refused.
	var overwritten atomic.Bool
	ok := runUntilThenStop(consA, 90*time.Second, func() bool {
		if s, found, err := storeB.Get(context.Background(), m.MessageID); err == nil && found && !s.Sent {
			overwritten.Store(true)
		}
		return f.queueCount(f.queues.Workflows.URL) == 0
	})
	if getRefused.Load() != 1 {
		t.Fatalf("harness: A's mark store read was refused %d times, want 1:\n%s", getRefused.Load(), f.logs)
	}
	got, d := f.site.Texts("creator-a"), f.dlq()
	var reasons []string
	for _, m := range d {
		reasons = append(reasons, aws.ToString(m.MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if !ok || strings.Join(got, ",") != first.Content+","+m.Content || len(d) != 0 {
		t.Fatalf("ok %t: the fan has %q (%d send requests at the front), %d dead-lettered %q; the sent mark was replaced by an attempt mark: %t; the scraper's word:\n%s",
			ok, got, posts.Load(), len(d), reasons, overwritten.Load(),
			linesWith(f.logs.String(), "mark store", "marks unavailable", "Redis lost", "sending", "unresolved", "not sent", "dead-letter", "interrupted", "outcome", "sent mark"))
	}
}
