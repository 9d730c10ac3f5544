package scraper_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/huntaze/message-pipeline/scraper"
)

// getRefusingDDB is the mark store's DynamoDB refusing one read (GetItem)
// once armed (throttled past the SDK's retries); refused counts it.
type getRefusingDDB struct {
	scraper.DynamoDBAPI
	armed   *atomic.Bool
	refused *atomic.Int64
}

func (d getRefusingDDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if d.armed.CompareAndSwap(true, false) {
		d.refused.Add(1)
		return nil, errors.New("ProvisionedThroughputExceededException: the level of configured provisioned throughput for the table was exceeded")
	}
	return d.DynamoDBAPI.GetItem(ctx, in, o...)
}

// TestRev22UAOlderMemoryMarkPutOverTheMarkStoresLaterClickWhenItsReadIsRefused
// (review 22 U, finding A):
//
// Promise (a): every accepted message reaches the fan exactly once; (c):
// outages (the mark store refusing a call, Redis emptied, SQS refusing a
// call) are waited out.
//
// Fault: review 22 T A's scenario (two tasks A and B, one Redis, one
// mark store, one queue), with one more refusal:
//  1. Task A clicks (M1); the request hangs and never commits. The mark
//     store refuses writes past ANSWERED_PROOF_PATIENCE: M1 stays in A's
//     memory (heldProofs) and Redis.
//  2. The mark store is back. Task B reads M1 back not sent past its
//     horizon and clicks again (M2, committed by the origin 22 s later,
//     inside the 25 s horizon). B stores M2 in Redis and the mark store
//     and releases the message; SQS refuses that visibility change (the
//     message returns after 3 s) and Redis is emptied.
//  3. Task A gets the message; the mark store refuses that one read
//     (GetItem: throttled).
//
// Why: heldProof gives A its memory's M1; answeredSent's read of the mark
// store (which would have switched to the later M2: T A's fix) is
// refused, so recover waits, uncounted, as it should. But keepMark then
// finds c.mark = M1 not stored (heldProof's c.known(m, false)) and
// keepAttempt writes M1 to Redis and, once the store takes it, PutItem's
// M1 over the stored M2: Put's only condition is "not Answered", it never
// compares clickedAt as Delete now does. M2 is in no store and in no
// memory (B dropped it once stored). The next processing reads back
// against M1, finds no copy (M2 has not landed yet), settles not sent
// and, after the fence, clicks a third time; M2 lands too: the fan has it
// twice. The same Put follows every wait between heldProof and recover's
// read (the breaker open, credentials unavailable, a paused creator).
//
// Fixed: DynamoMarks.Put is conditional, as Delete is: a mark that is
// not Answered never replaces a later click's (clickedAt), a sent item or
// an Answered one. A's put of M1 leaves M2 in place, and the next
// processing's answeredSent reads back against M2 (review 22 T A's fix).
func TestRev22UAOlderMemoryMarkPutOverTheMarkStoresLaterClickWhenItsReadIsRefused(t *testing.T) {
	cfg := testConfig()
	// A horizon of 25 s (the gate's max hold follows): M2 commits 22 s
	// after its click, room for step 3's two processings before it lands.
	cfg.LateCommitHorizon = 25 * time.Second
	f := setup(t, cfg)
	ddbFailing, ddbRefused := f.markStoreRefusingWrites()
	storeB := f.marks
	getArmed, getRefused := new(atomic.Bool), new(atomic.Int64)
	storeA := scraper.NewDynamoMarks(getRefusingDDB{DynamoDBAPI: putFailingDDB{DynamoDBAPI: f.ddbCalls, failing: ddbFailing, refused: ddbRefused}, armed: getArmed, refused: getRefused},
		attemptsTable, time.Hour, time.Now)
	var h harnessErrors
	var posts atomic.Int64
	committed := make(chan struct{})
	var m2At atomic.Int64
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
			case 2: // B's click: committed 22 s later (inside the 25 s horizon)
				m2At.Store(time.Now().UnixMilli())
				armed.Store(true)
				commitLater(origin, r, 22*time.Second, committed)
				select {
				case <-r.Context().Done():
				case <-time.After(22 * time.Second):
				}
				return
			}
			origin.ServeHTTP(w, r)
		})
	}
	lose := func() {
		h.check(f.redis.Client().FlushAll(context.Background()).Err())
		getArmed.Store(true) // A's next mark store read is refused
	}
	consA, consB := f.twoTasks(cfg, front, storeA, storeB, visibilityFailingSQS{SQSAPI: f.aws.SQS, armed: armed, refused: visRefused, lose: lose})
	m := f.newMessage("creator-a", "sent twice over an older put")
	f.enqueue(m)

	// 1. A clicks M1; the mark store refuses it past the patience.
	f.leaveInMemory(t, consA, 90*time.Second, ddbRefused)
	ddbFailing.Store(false)

	// 2. B settles M1 not sent, clicks M2, stores it; its release is
	// refused and Redis is emptied.
	if !runUntilThenStop(consB, 120*time.Second, func() bool { return visRefused.Load() > 0 }) {
		t.Fatalf("harness: B never released after a second click (%d send requests):\n%s", posts.Load(), f.logs)
	}
	h.fatalIfAny(t)
	stored, found, err := storeB.Get(context.Background(), m.MessageID)
	if err != nil || !found || stored.Sent || stored.Mark.ClickedAt == 0 {
		t.Fatalf("harness: the mark store does not hold B's M2: %+v %t %v", stored, found, err)
	}
	m2 := stored.Mark.ClickedAt

	// 3. A gets it again; its first mark store read is refused.
	var olderPut atomic.Bool
	ok := runUntilThenStop(consA, 150*time.Second, func() bool {
		if s, found, err := storeB.Get(context.Background(), m.MessageID); err == nil && found && !s.Sent && s.Mark.ClickedAt != 0 && s.Mark.ClickedAt < m2 {
			olderPut.Store(true)
		}
		select {
		case <-committed:
			return f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	if getRefused.Load() != 1 {
		t.Fatalf("harness: A's mark store read was refused %d times, want 1:\n%s", getRefused.Load(), f.logs)
	}
	if got, dlq := f.site.Texts("creator-a"), len(f.dlq()); !ok || len(got) != 1 || dlq != 0 {
		t.Fatalf("ok %t: the fan has %q (%d send requests at the front), %d dead-lettered; the mark store held an older mark than B's M2 (clicked %d, request at %d) after A's refused read: %t; the scraper's word:\n%s",
			ok, got, posts.Load(), dlq, m2, m2At.Load(), olderPut.Load(),
			linesWith(f.logs.String(), "mark store", "marks unavailable", "Redis lost", "sending", "unresolved", "not sent", "dead-letter", "interrupted", "may still land", "fenced", "later click"))
	}
}
