package scraper_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/huntaze/message-pipeline/scraper"
)

// putFailingDDB is the mark store's DynamoDB refusing every write
// (PutItem) while failing is set (throttled past the SDK's retries, or
// unreachable); reads answer.
type putFailingDDB struct {
	scraper.DynamoDBAPI
	failing *atomic.Bool
	refused *atomic.Int64
}

func (d putFailingDDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if d.failing.Load() {
		d.refused.Add(1)
		return nil, errors.New("ProvisionedThroughputExceededException: the level of configured provisioned throughput for the table was exceeded")
	}
	return d.DynamoDBAPI.PutItem(ctx, in, o...)
}

// TestRev22OAAnsweredProofLostWhenTheMarkStoreRefusesItsPut:
//
// Promise (c): outages (Redis refusing writes, the mark store's DynamoDB
// refusing writes) never put a message in a DLQ; (a): a message the site
// answered 2xx is settled sent, never lost to a guess.
//
// Fault: the scenario of the fixed review 22 N B test (two messages to one
// fan; from the second message's send request Redis refuses writes,
// maxmemory 1 noeviction, for 3 s; the site answers that send 200; the
// fan then replies three times and the chat, showing its latest 3
// messages, scrolls the click's anchor out of view), except that the mark
// store's DynamoDB refuses writes (PutItem) for those same 3 s instead of
// one read. Both stores are back 3 s later; nothing else fails.
//
// Why: the 2xx's proof (Mark.Answered) lives only in process memory
// (click.answered, processor_marks.go:31-37) until keepMark writes it.
// answeredUnsettled (processor_lastsent.go:52-60) tries Redis, which
// refuses (the same OOM that refused the last-sent record), and keepMark
// (processor_marks.go:71-73) tries the mark store once, which refuses
// too: it only logs "attempt mark ... not written to the mark store:
// only Redis holds it" (false: Redis holds only the pre-click mark) and
// the consumer releases the message. The proof is gone: the next
// processing's answeredSent (processor_lastsent.go:69-84) finds neither
// an Answered Redis mark nor a stored item and recover
// (processor_readback.go:37) reads the chat back with the pre-click mark:
// "no longer shown" -> undecided -> fail(ClassOutcomeUnknown), counted,
// and after MaxFailures the sent message is dead-lettered (a redrive
// sends it twice). Two outages that each the design waits out, overlapping
// for one write, lose the only proof.
//
// Fixed (processor_proofs.go): keepAnswered tries the proof again while
// the mark store refuses it, for AnsweredProofPatience (the heartbeat
// holds the message), and the task keeps every unsettled proof in memory
// (heldProofs), which answeredSent reads first. The second case has
// both refuse past the patience: only the memory keeps the proof across
// receives.
//
// Reviewer's suggested fix: never let a message go with an Answered proof held only
// in memory: when keepMark cannot write an Answered mark, retry it (with
// backoff, within the message's visibility, heartbeating) and/or keep
// the processing and retry settleSent in-process until Redis or the mark
// store takes it; additionally keep a per-task in-memory set of answered
// message ids consulted by answeredSent so that a redelivery to the same
// task settles it from memory.
func TestRev22OAAnsweredProofLostWhenTheMarkStoreRefusesItsPut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		redisDown, storeDown time.Duration
	}{
		{"both back within the proof's patience", 3 * time.Second, 3 * time.Second},
		// testConfig: 5 s. Redis refusing past it too leaves the proof in
		// this task's memory only for several receives.
		{"both back only long after it", 12 * time.Second, 12 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			answeredProofRefusedByBoth(t, tc.redisDown, tc.storeDown)
		})
	}
}

// answeredProofRefusedByBoth runs review O's scenario with the mark store
// refusing writes for storeDown and Redis for redisDown from the second
// send request.
func answeredProofRefusedByBoth(t *testing.T, redisDown, storeDown time.Duration) {
	cfg := testConfig()
	f := setup(t, cfg)
	ddbFailing, ddbRefused := f.markStoreRefusingWrites()
	ok := f.answeredWhileRedisRefuses(t, cfg, redisDown, func() {
		ddbFailing.Store(true)
		time.AfterFunc(storeDown, func() { ddbFailing.Store(false) })
	}, false)
	if ddbRefused.Load() == 0 {
		t.Fatal("harness: no mark store write refused")
	}
	f.deliveredInOrderNoDLQ(t, ok, answeredTexts, "not recorded", "no longer shown", "dead-letter", "answered-sent", "kept in the mark store")
}
