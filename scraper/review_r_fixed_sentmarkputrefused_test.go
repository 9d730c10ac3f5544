package scraper_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/scraper"
)

// TestRev22RBSentMarkRefusedOnceByTheMarkStoreThenRedisLostIsSentAgain:
//
// Promise (a): every accepted message reaches the fan exactly once, never
// twice; (c): outages (the mark store's DynamoDB refusing a write, SQS
// refusing a call, a Redis failover to an empty replica) are waited out.
//
// Fault: review 22 P B's class of fault, on the hot path: one message; the
// site answers its send 200 at once; Redis takes the fan's last-sent
// record and the sent mark. The mark store's DynamoDB refuses the sent
// mark's PutItem (throttled, for 1 s), SQS refuses the message's
// DeleteMessage once (throttled; its visibility compressed), and at that
// moment the ledger's Redis fails over to an empty replica (FlushAll).
// Nothing else fails.
//
// Why: once Redis took the sent mark, settle drops the task's memory
// proof (processor_marks.go:103-107), and keepMark's `case c.sent:`
// (processor_marks.go:67-70) tries the mark store's PutSent once and only
// logs "only Redis holds it". Unlike a sent mark Redis refused (keepSent,
// retried for the proof's patience, review 22 P B) or an Answered proof
// (keepAnswered, review 22 O), nothing retries it and no memory keeps it.
// Redis emptied, the redelivery finds no mark in Redis, none in the mark
// store and no memory proof: checkMarkStore (processor_decide.go:111-116)
// logs "Redis lost the ledger ... sending" and the message is clicked again
// after the gate's fence: the fan has it twice.
//
// Suggested fix: make keepMark's PutSent go through keepProof (retry for
// AnsweredProofPatience, the heartbeat holding the message) and keep the
// proof in heldProofs until the mark store holds the sent mark, not
// merely Redis: Redis alone is the store that failovers and restarts
// empty. (Also test RA: the same single try for an unresolved click's
// mark.)
//
// Fixed (processor_marks.go keepMark and settle, processor_proofs.go
// keepSent): a sent mark goes to the mark store through keepProof whether
// Redis took it or not, and its proof stays in the task's memory until
// the mark store holds it; heldProof settles the redelivery from it.
func TestRev22RBSentMarkRefusedOnceByTheMarkStoreThenRedisLostIsSentAgain(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	f := setup(t, cfg)
	ddbFailing, ddbRefused := f.markStoreRefusingWrites()
	var h harnessErrors
	var clicked, deleteArmed, lost atomic.Bool
	var deletesRefused atomic.Int64
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && clicked.CompareAndSwap(false, true) {
				origin.ServeHTTP(w, r)
				ddbFailing.Store(true)
				deleteArmed.Store(true)
				time.AfterFunc(time.Second, func() { ddbFailing.Store(false) })
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	f.consumer = scraper.NewConsumer(f.consumerConfig(), deleteFailingSQS{SQSAPI: f.aws.SQS, armed: &deleteArmed, refused: &deletesRefused,
		lose: func() { h.check(f.redis.Client().FlushAll(context.Background()).Err()); lost.Store(true) }},
		f.ledger, f.proc, slog.New(slog.NewJSONHandler(f.logs, nil)))
	m := f.newMessage("creator-a", "hello")
	f.enqueue(m)
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	h.fatalIfAny(t)
	if ddbRefused.Load() == 0 || deletesRefused.Load() != 1 || !lost.Load() {
		t.Fatalf("harness: %d mark store writes refused, %d deletes refused, Redis emptied %t:\n%s", ddbRefused.Load(), deletesRefused.Load(), lost.Load(),
			linesWith(f.logs.String(), "sent mark", "delete", "message processed"))
	}
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 || len(f.dlq()) != 0 {
		t.Fatalf("ok %t: the fan has %q (%d send requests), %d dead-lettered; the scraper's word:\n%s",
			ok, got, f.site.SendRequests(), len(f.dlq()), linesWith(f.logs.String(), "mark store", "Redis lost", "sending", "delete", "dead-letter"))
	}
}
