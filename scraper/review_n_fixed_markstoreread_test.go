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

// readFailingDDB is the mark store's DynamoDB refusing one read once
// failing is set (a read throttled past the SDK's retries).
type readFailingDDB struct {
	scraper.DynamoDBAPI
	failing *atomic.Bool
	refused *atomic.Int64
}

func (d readFailingDDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if d.failing.CompareAndSwap(true, false) {
		d.refused.Add(1)
		return nil, errors.New("ProvisionedThroughputExceededException: the level of configured provisioned throughput for the table was exceeded")
	}
	return d.DynamoDBAPI.GetItem(ctx, in, o...)
}

// TestRev22NBOneMarkStoreReadErrorDestroysTheAnsweredProofAndDeadLetters:
//
// Promise (c): outages (Redis refusing writes, the mark store's DynamoDB
// refusing reads for a while) never put a message in a DLQ; (a): a
// message the site answered 2xx is settled sent.
//
// Fault: exactly the scenario of the fixed review 22 M D test (Redis
// refuses writes for 3 s from the second message's send request; the site
// answers it 200; the fan replies and the chat scrolls the click's anchor
// out of view), plus ONE mark store read (GetItem) refused: the first
// after that send request (a throttled read; writes work, so keepMark
// stores the Answered mark). Every later read answers.
//
// Why: Redis kept the mark written before the click (it refused the
// Answered one, answeredUnsettled processor_lastsent.go:51), so the
// proof is only in the mark store. answeredSent
// (processor_lastsent.go:64-67) takes a mark store error for "not
// answered" (`case err != nil || !found: return false`) and recover
// (processor_readback.go:27-33) goes on to read the chat back with the
// pre-click mark: "no longer shown" -> undecided -> fail, counted. Then
// keepMark (processor_marks.go:66-74: c.mark is Redis's pre-click mark,
// c.stored false from decide, processor_decide.go:27-28) Puts that
// pre-click mark over the stored Answered one: the proof is destroyed for
// good, every later read answers "not answered", and the sent message is
// dead-lettered after MaxFailures. One read blip suffices. checkMarkStore
// (processor_decide.go:92-95) holds a message on the same error ("a mark
// store that cannot say holds the message"); answeredSent does not.
//
// Suggested fix: answeredSent returns the error; recover waits
// (ClassInternal, uncounted) when the mark store cannot say, as
// checkMarkStore does, instead of reading back; and keepMark never
// replaces a stored Answered mark with a mark that is not (a conditional
// PutItem: attribute_not_exists(ok)), nor Puts a mark it did not read
// from the store when the store could not be read.
//
// Since review 22 O the task that got the 2xx keeps the proof in memory
// and would settle from it without reading the mark store, so the
// redelivery here goes to another task (handOver), whose read is the one
// refused.
func TestRev22NBOneMarkStoreReadErrorDestroysTheAnsweredProofAndDeadLetters(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	f := setup(t, cfg)
	var ddbFailing atomic.Bool
	var ddbRefused atomic.Int64
	f.marks = scraper.NewDynamoMarks(readFailingDDB{DynamoDBAPI: f.ddbCalls, failing: &ddbFailing, refused: &ddbRefused}, attemptsTable, time.Hour, time.Now)
	ok := f.answeredWhileRedisRefuses(t, cfg, 3*time.Second, func() { ddbFailing.Store(true) }, true)
	if ddbRefused.Load() == 0 {
		t.Fatal("harness: no mark store read refused")
	}
	f.deliveredInOrderNoDLQ(t, ok, answeredTexts, "not recorded", "no longer shown", "dead-letter", "answered-sent", "kept in the mark store")
}
