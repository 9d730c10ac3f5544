package lambdalocal_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/devstack/lambdalocal"
)

// Lambda's SQS event source mapping with ReportBatchItemFailures treats a
// response whose itemIdentifier is empty or not a message id of the batch
// as a failure of the whole batch: it deletes nothing and every record
// comes back. The local poller must do the same, or a limiter answer that
// would make AWS retry the batch makes the local run delete records.
func TestReview25PollerTreatsAnUnknownItemIdentifierAsAFailedBatch(t *testing.T) {
	// GIVEN fauxqs with a standard queue holding two records
	root, err := emulator.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	fq, err := emulator.StartFauxqs(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fq.Close() })
	ctx := context.Background()
	q, err := fq.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("review25-intake")})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"one", "two"} {
		if _, err := fq.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	// AND a handler whose partial batch response names an item that is not
	// in the batch (an empty identifier)
	var got int
	p := &lambdalocal.Poller{Client: fq.SQS, QueueURL: aws.ToString(q.QueueUrl), QueueARN: "arn:aws:sqs:us-east-1:000000000000:review25-intake",
		BatchSize: 10, Wait: time.Second,
		Handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			got += len(ev.Records)
			return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: ""}}}, nil
		}}

	// WHEN the poller delivers the batch
	res, err := p.PollOnce(ctx)

	// THEN, as the event source mapping does, nothing is deleted
	if got == 0 {
		t.Fatalf("no records delivered (err %v)", err)
	}
	if res.Deleted != 0 {
		t.Fatalf("poller deleted %d of %d records after an invalid partial batch response; Lambda fails the whole batch and deletes none", res.Deleted, res.Received)
	}
}
