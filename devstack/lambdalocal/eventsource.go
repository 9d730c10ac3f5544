package lambdalocal

// Poller is the Lambda SQS event source mapping: receive a batch (up to
// BatchSize records, gathering for up to BatchingWindow), build an
// events.SQSEvent, call the handler, delete the records it did not list in
// batchItemFailures (none if it returned an error). The local pipeline
// feeds the limiter's function with it (SQSHandler); tests call handlers
// in process with it.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Handler is a Lambda SQS handler with partial batch responses.
type Handler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// PollerSQS is the part of the SQS client the poller uses.
type PollerSQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// Poller feeds one queue to one handler.
type Poller struct {
	Client    PollerSQS
	QueueURL  string
	QueueARN  string
	BatchSize int32         // 1..10
	Wait      time.Duration // long polling, whole seconds (0 = short poll)
	// BatchingWindow is the mapping's MaximumBatchingWindowInSeconds: how
	// long to gather records towards BatchSize after the first (0: one
	// receive's worth).
	BatchingWindow time.Duration
	Handler        Handler
}

// Result of one poll.
type Result struct {
	Received, Deleted, Failed int
}

// PollOnce receives at most one batch and processes it.
func (p *Poller) PollOnce(ctx context.Context) (Result, error) {
	size := max(1, min(p.BatchSize, 10))
	msgs, err := p.receive(ctx, size, p.Wait)
	if err != nil {
		return Result{}, err
	}
	if len(msgs) == 0 {
		return Result{}, nil
	}
	for deadline := time.Now().Add(p.BatchingWindow); len(msgs) < int(size) && time.Now().Before(deadline); {
		more, err := p.receive(ctx, size-int32(len(msgs)), min(time.Until(deadline), 20*time.Second))
		if err != nil {
			return Result{}, err
		}
		msgs = append(msgs, more...)
	}
	out := &sqs.ReceiveMessageOutput{Messages: msgs}
	ev := Event(p.QueueARN, out.Messages)
	resp, herr := p.Handler(ctx, ev)
	res := Result{Received: len(out.Messages)}
	if herr != nil {
		// Lambda deletes nothing when the handler fails: all come back.
		res.Failed = len(out.Messages)
		return res, fmt.Errorf("handler: %w", herr)
	}
	inBatch := make(map[string]bool, len(out.Messages))
	for _, m := range out.Messages {
		inBatch[aws.ToString(m.MessageId)] = true
	}
	failed := make(map[string]bool, len(resp.BatchItemFailures))
	for _, f := range resp.BatchItemFailures {
		if !inBatch[f.ItemIdentifier] {
			// As the event source mapping does: an empty or unknown item
			// identifier fails the whole batch; nothing is deleted.
			res.Failed = len(out.Messages)
			return res, fmt.Errorf("handler: batch item failure %q names no record of the batch", f.ItemIdentifier)
		}
		failed[f.ItemIdentifier] = true
	}
	del := &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL)}
	for i, m := range out.Messages {
		if failed[aws.ToString(m.MessageId)] {
			res.Failed++
			continue
		}
		del.Entries = append(del.Entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
	}
	if len(del.Entries) > 0 {
		dout, err := p.Client.DeleteMessageBatch(ctx, del)
		if err != nil {
			return res, fmt.Errorf("delete processed records: %w", err)
		}
		res.Deleted = len(del.Entries) - len(dout.Failed)
	}
	return res, nil
}

func (p *Poller) receive(ctx context.Context, n int32, wait time.Duration) ([]sqstypes.Message, error) {
	out, err := p.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         n,
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from %s: %w", p.QueueURL, err)
	}
	return out.Messages, nil
}

// Invoker runs one invocation of a function (*Function).
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// SQSHandler invokes fn with the event and reads its partial batch
// response, as the event source mapping does with ReportBatchItemFailures.
func SQSHandler(fn Invoker) Handler {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		payload, err := json.Marshal(ev)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		out, err := fn.Invoke(ctx, payload)
		if err != nil {
			return events.SQSEventResponse{}, err
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			// Lambda treats a response it cannot read as a failed batch.
			return events.SQSEventResponse{}, fmt.Errorf("partial batch response %q: %w", out, err)
		}
		return resp, nil
	}
}

// Event converts received SQS messages to the event Lambda would deliver.
func Event(queueARN string, msgs []sqstypes.Message) events.SQSEvent {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, m := range msgs {
		attrs := make(map[string]events.SQSMessageAttribute, len(m.MessageAttributes))
		for k, v := range m.MessageAttributes {
			attrs[k] = events.SQSMessageAttribute{
				DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue,
				StringListValues: v.StringListValues, BinaryListValues: v.BinaryListValues,
			}
		}
		ev.Records[i] = events.SQSMessage{
			MessageId:         aws.ToString(m.MessageId),
			ReceiptHandle:     aws.ToString(m.ReceiptHandle),
			Body:              aws.ToString(m.Body),
			Md5OfBody:         aws.ToString(m.MD5OfBody),
			Attributes:        m.Attributes,
			MessageAttributes: attrs,
			EventSourceARN:    queueARN,
			EventSource:       "aws:sqs",
			AWSRegion:         "us-east-1",
		}
	}
	return ev
}
