package redrive_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/deadletter"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/redrive"
	"github.com/huntaze/message-pipeline/test/harness"
)

type queues struct {
	f           *harness.Fauxqs
	source, dlq string
	ctx         context.Context
	t           *testing.T
}

func setup(t *testing.T) *queues {
	f := harness.StartFauxqs(t)
	sys := f.CreateQueues(t, "test")
	return &queues{f: f, source: sys.Workflows.URL, dlq: sys.Workflows.DLQURL, ctx: context.Background(), t: t}
}

// firstSentThenDeadLettered does what the pipeline does: the message goes
// to the source queue with its deduplication id, is consumed, and moves to
// the DLQ with the same id and a reason (all within SQS's 5-minute
// deduplication window: the worst case for a redrive that reused the id).
func (q *queues) firstSentThenDeadLettered(group, body, reason string) {
	q.t.Helper()
	dedup := "dedup-" + body
	if _, err := q.f.SQS.SendMessage(q.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.source), MessageBody: aws.String(body), MessageGroupId: aws.String(group), MessageDeduplicationId: aws.String(dedup)}); err != nil {
		q.t.Fatal(err)
	}
	out, err := q.f.SQS.ReceiveMessage(q.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.source), MaxNumberOfMessages: 1})
	if err != nil || len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != body {
		q.t.Fatalf("consume %s: %v %v", body, err, out)
	}
	if _, err := q.f.SQS.DeleteMessage(q.ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.source), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
		q.t.Fatal(err)
	}
	m := deadletter.Message{Body: body, GroupID: group, DeduplicationID: dedup,
		Attributes: map[string]sqstypes.MessageAttributeValue{"userId": {DataType: aws.String("String"), StringValue: aws.String("u-1")}}}
	if reason == "" { // the queue's maxReceiveCount moved it: no reason attribute
		if _, err := q.f.SQS.SendMessage(q.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.dlq), MessageBody: aws.String(body), MessageAttributes: m.Attributes,
			MessageGroupId: aws.String(group), MessageDeduplicationId: aws.String(dedup)}); err != nil {
			q.t.Fatal(err)
		}
		return
	}
	if err := deadletter.Move(q.ctx, q.f.SQS, q.dlq, m, reason); err != nil {
		q.t.Fatal(err)
	}
}

func (q *queues) drain(url string) []sqstypes.Message {
	q.t.Helper()
	var all []sqstypes.Message
	for range 20 {
		out, err := q.f.SQS.ReceiveMessage(q.ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			q.t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return all
		}
		for _, m := range out.Messages {
			all = append(all, m)
			_, _ = q.f.SQS.DeleteMessage(q.ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
	return all
}

func TestADryRunCountsByReasonAndMovesNothing(t *testing.T) {
	// GIVEN five dead-lettered messages of four groups, four with reasons
	// and one without
	q := setup(t)
	q.firstSentThenDeadLettered("creator-a", "a0", "scraper: client_error: site refused the message with 404")
	q.firstSentThenDeadLettered("creator-b", "b0", "scraper: client_error: site refused the message with 404")
	q.firstSentThenDeadLettered("creator-c", "c0", "scraper: failed 5 times: server_error")
	q.firstSentThenDeadLettered("creator-d", "d0", "")
	q.firstSentThenDeadLettered("creator-a", "a1", "scraper: client_error: site refused the message with 404")
	// WHEN a dry run looks at them
	rep, err := redrive.Run(q.ctx, q.f.SQS, redrive.Config{DeadLetterURL: q.dlq, SourceURL: q.source, Hold: redrive.DefaultHold, DryRun: true})
	// THEN it reports the DLQ's depth and counts what SQS hands out while
	// it holds them (every group's head at least: a FIFO group's later
	// message stays behind a held one), by reason, most frequent first
	if err != nil || rep.Total != 5 || rep.Seen < 4 || rep.Moved != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	if top := rep.Reasons()[0]; top != "scraper: client_error: site refused the message with 404" || rep.ByReason[top] < 2 {
		t.Fatalf("top reason %q (%v)", top, rep.ByReason)
	}
	if rep.ByReason[redrive.NoReason] != 1 || rep.ByReason["scraper: failed 5 times: server_error"] != 1 {
		t.Fatalf("%v", rep.ByReason)
	}
	// AND nothing moved: all five are in the DLQ, visible at once
	if n := harness.QueueDepth(q.f.SQS, q.source); n != 0 {
		t.Fatalf("a dry run moved %d", n)
	}
	if n := len(q.drain(q.dlq)); n != 5 {
		t.Fatalf("%d messages left visible in the DLQ, want 5", n)
	}
}

func TestARedriveMovesEveryMessageBackInGroupOrderWithoutItsReason(t *testing.T) {
	// GIVEN a creator's three messages dead-lettered in order, minutes
	// (here: moments) after their first send with the same deduplication
	// ids, and another creator's
	q := setup(t)
	for _, b := range []string{"a0", "a1", "a2"} {
		q.firstSentThenDeadLettered("creator-a", b, "scraper: client_error: 404")
	}
	q.firstSentThenDeadLettered("creator-b", "b0", "")
	// WHEN they are redriven
	rep, err := redrive.Run(q.ctx, q.f.SQS, redrive.Config{DeadLetterURL: q.dlq, SourceURL: q.source, Hold: redrive.DefaultHold})
	if err != nil || rep.Seen != 4 || rep.Moved != 4 || rep.Failed != 0 {
		t.Fatalf("%+v %v", rep, err)
	}
	// THEN the DLQ is empty, the source holds all four (none taken for a
	// duplicate of its first send), each creator's in order, in its group,
	// with its attributes but no failure_reason
	if n := harness.QueueDepth(q.f.SQS, q.dlq); n != 0 {
		t.Fatalf("%d left in the DLQ", n)
	}
	got := q.drain(q.source)
	byGroup := map[string][]string{}
	for _, m := range got {
		g := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]
		byGroup[g] = append(byGroup[g], aws.ToString(m.Body))
		if _, ok := m.MessageAttributes[message.AttrFailureReason]; ok {
			t.Errorf("%s kept its failure_reason", aws.ToString(m.Body))
		}
		if aws.ToString(m.MessageAttributes["userId"].StringValue) != "u-1" {
			t.Errorf("%s lost its attributes: %v", aws.ToString(m.Body), m.MessageAttributes)
		}
	}
	if fmt.Sprint(byGroup["creator-a"]) != "[a0 a1 a2]" || fmt.Sprint(byGroup["creator-b"]) != "[b0]" {
		t.Fatalf("source holds %v", byGroup)
	}
	// AND a second redrive finds nothing
	if rep, err := redrive.Run(q.ctx, q.f.SQS, redrive.Config{DeadLetterURL: q.dlq, SourceURL: q.source, Hold: redrive.DefaultHold}); err != nil || rep.Seen != 0 {
		t.Fatalf("second run %+v %v", rep, err)
	}
}
