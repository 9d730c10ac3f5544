package scraper_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/test/wait"
)

// TestRev22RAUnresolvedClickMarkRefusedByTheMarkStoreOnceThenRedisLostIsClickedAgain:
//
// Promise (a): every accepted message reaches the fan exactly once, never
// twice; (c): outages (the mark store's DynamoDB refusing a write, a Redis
// failover to an empty replica or a restart without persistence) are
// waited out.
//
// Fault: one message; the site hangs its send request (no answer, the
// client gives up after 1.5 s) and its origin commits it 12 s after the
// click (inside LateCommitHorizon, 15 s: review 22 C's origin). While that
// processing lets the message go, the mark store's DynamoDB refuses one
// write (PutItem: throttled past the SDK's retries, review 22 O's fault);
// right after, Redis is lost: emptied (review 22 D's fault: a failover to
// an empty replica), or restarted from a snapshot SAVEd at the chat load
// before the click (review 22 P A's second case). The mark store takes
// writes again 1 s later. One task throughout; nothing else fails.
//
// Why: the attempt mark of an unanswered click is made durable only by
// keepMark's single marks.Put (processor_marks.go:76-79): when it is
// refused it logs "only Redis holds it" and the consumer releases the
// message all the same. Unlike an Answered proof (keepAnswered →
// keepProof, retried for AnsweredProofPatience and held in the task's
// memory, review 22 O/P) or a sent mark (keepSent), nothing retries it and
// no memory keeps it (heldProofs holds Answered marks only,
// heldProof). Redis emptied, the redelivery finds no mark in Redis and
// none in the mark store: checkMarkStore (processor_decide.go:84-117)
// takes the "uncovered && receives > 1" branch, whose comment says only a
// task that *died* between a click and that write leaves no mark, and the
// message is clicked again (after the gate's fence and the ledger's
// patience); the first request has landed meanwhile: the fan has it
// twice. With the snapshot (the epoch kept, not "uncovered") it falls
// through to send the same way, with no log line at all.
//
// Suggested fix: treat an unresolved attempt mark like an Answered proof:
// keepMark retries marks.Put through keepProof (Redis's MarkAttempting
// and the mark store, for the patience, the heartbeat holding the
// message), and the task keeps every unresolved mark it let go of in
// memory (as heldProofs) until a store holds it, so heldProof makes it
// the redelivery's unresolved click whatever Redis says; never release a
// message whose unresolved click is held by no store without holding it
// in memory.
//
// Fixed (processor_proofs.go keepAttempt, heldProof): an unresolved
// click's mark goes through keepProof (retried on the mark store and on
// Redis for AnsweredProofPatience) and stays in the task's memory until
// the mark store holds it; heldProof gives a memory mark to a redelivery
// that finds none in Redis. The refusal lasts 1 s (the retry covers it)
// or 8 s, past the test's 5 s patience (the memory covers it). The
// trigger is the first refused write, not the old log line, which the
// fix no longer writes.
func TestRev22RAUnresolvedClickMarkRefusedByTheMarkStoreOnceThenRedisLostIsClickedAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		snapshot  bool
		refuseFor time.Duration
	}{
		// State has no epoch: checkMarkStore's "uncovered" branch sends.
		{"redis emptied, the mark store refusing 1 s", false, time.Second},
		{"redis emptied, the mark store refusing past the patience", false, 8 * time.Second},
		// A snapshot SAVEd at the chat load before the click (before its
		// attempt mark): the epoch is kept, nothing is uncovered, and
		// checkMarkStore falls through to the click.
		{"redis restarted from a snapshot taken before the click, the mark store refusing past the patience", true, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			unresolvedMarkRefusedThenRedisLost(t, tc.snapshot, tc.refuseFor)
		})
	}
}

func unresolvedMarkRefusedThenRedisLost(t *testing.T, snapshot bool, refuseFor time.Duration) {
	cfg := testConfig()
	f := setup(t, cfg)
	ddbFailing, ddbRefused := f.markStoreRefusingWrites()
	committed := make(chan struct{})
	var h harnessErrors
	var clicked, saved, flushed atomic.Bool
	lose := func() error { return f.redis.Client().FlushAll(context.Background()).Err() }
	if snapshot {
		lose = f.redis.Redis.RestartFromSnapshot
	}
	hang := commitAfterTheClientLeft(12*time.Second, committed)
	f.behind(cfg, func(origin http.Handler) http.Handler {
		inner := hang(origin)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if snapshot && r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") && saved.CompareAndSwap(false, true) {
				h.check(f.redis.Client().Save(context.Background()).Err())
			}
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && clicked.CompareAndSwap(false, true) {
				// The mark store refuses writes from the hanging click on,
				// until Redis was lost after the processing let go.
				ddbFailing.Store(true)
				go func() {
					if !wait.Until(30*time.Second, 10*time.Millisecond, func() bool { return ddbRefused.Load() > 0 }) {
						h.check(errString("the unresolved click's mark was never refused by the mark store"))
						ddbFailing.Store(false)
						return
					}
					h.check(lose())
					flushed.Store(true)
					time.AfterFunc(refuseFor, func() { ddbFailing.Store(false) })
				}()
			}
			inner.ServeHTTP(w, r)
		})
	})
	m := f.newMessage("creator-a", "sent into a hanging origin")
	f.enqueue(m)
	ok := f.runUntil(90*time.Second, func() bool {
		select {
		case <-committed:
			return f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	h.fatalIfAny(t)
	if ddbRefused.Load() == 0 || !flushed.Load() {
		t.Fatalf("harness: %d mark store writes refused, Redis lost %t", ddbRefused.Load(), flushed.Load())
	}
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 || len(f.dlq()) != 0 {
		t.Fatalf("ok %t: the fan has %q (%d send requests at the origin), %d dead-lettered; the scraper's word:\n%s",
			ok, got, f.site.SendRequests(), len(f.dlq()), linesWith(f.logs.String(), "mark store", "Redis lost", "sending", "unresolved", "not sent", "dead-letter"))
	}
}

type errString string

func (e errString) Error() string { return string(e) }
