package harness

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// AWSShapeFIFO is an in-memory FIFO queue that hands messages out the way AWS
// does, in front of a real client (fauxqs) that serves every other queue.
//
// Why a double: fauxqs returns at most one message per message group per
// receive, so a batch never holds two records of one creator there, while
// AWS returns up to 10 of one group, in order. This double does what AWS
// does: a receive takes visible messages in queue order from groups with no
// message in flight, several of one group included; a message whose
// visibility ends goes back to its place; deduplication ids are remembered
// 5 minutes per group (high-throughput mode). Receipt handles are checked.
type AWSShapeFIFO struct {
	*sqs.Client
	URL string

	mu    sync.Mutex
	seq   int
	msgs  []*fifoMessage
	dedup map[string]time.Time
	now   func() time.Time
}

type fifoMessage struct {
	id, body, group, dedup string
	attrs                  map[string]sqstypes.MessageAttributeValue
	receives               int
	receipt                string
	invisibleUntil         time.Time
	sent                   time.Time
}

// NewAWSShapeFIFO returns an empty queue with the given URL in front of client.
func NewAWSShapeFIFO(client *sqs.Client, url string) *AWSShapeFIFO {
	return &AWSShapeFIFO{Client: client, URL: url, dedup: map[string]time.Time{}, now: time.Now}
}

func (q *AWSShapeFIFO) add(body, group, dedup string, attrs map[string]sqstypes.MessageAttributeValue) (string, error) {
	if group == "" || dedup == "" {
		return "", fmt.Errorf("awsfifo: MessageGroupId and MessageDeduplicationId are required")
	}
	now := q.now()
	key := group + "\x00" + dedup
	q.seq++
	id := fmt.Sprintf("awsfifo-%d", q.seq)
	if at, ok := q.dedup[key]; ok && now.Sub(at) < 5*time.Minute {
		return id, nil // accepted, not enqueued: SQS deduplication
	}
	q.dedup[key] = now
	q.msgs = append(q.msgs, &fifoMessage{id: id, body: body, group: group, dedup: dedup, attrs: attrs, sent: now})
	return id, nil
}

// SendMessage enqueues to this queue, or passes the call on.
func (q *AWSShapeFIFO) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if aws.ToString(in.QueueUrl) != q.URL {
		return q.Client.SendMessage(ctx, in, o...)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	id, err := q.add(aws.ToString(in.MessageBody), aws.ToString(in.MessageGroupId), aws.ToString(in.MessageDeduplicationId), in.MessageAttributes)
	if err != nil {
		return nil, err
	}
	return &sqs.SendMessageOutput{MessageId: aws.String(id)}, nil
}

// SendMessageBatch enqueues to this queue in entry order, or passes the call on.
func (q *AWSShapeFIFO) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, o ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if aws.ToString(in.QueueUrl) != q.URL {
		return q.Client.SendMessageBatch(ctx, in, o...)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		id, err := q.add(aws.ToString(e.MessageBody), aws.ToString(e.MessageGroupId), aws.ToString(e.MessageDeduplicationId), e.MessageAttributes)
		if err != nil {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("MissingParameter"), Message: aws.String(err.Error()), SenderFault: true})
			continue
		}
		out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String(id)})
	}
	return out, nil
}

// ReceiveMessage returns up to MaxNumberOfMessages visible messages in queue
// order from groups with nothing in flight, or passes the call on. It does
// not wait (short poll), so callers pace their own loops.
func (q *AWSShapeFIFO) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if aws.ToString(in.QueueUrl) != q.URL {
		return q.Client.ReceiveMessage(ctx, in, o...)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	locked := map[string]bool{}
	for _, m := range q.msgs {
		if m.invisibleUntil.After(now) {
			locked[m.group] = true
		}
	}
	n := int(max(1, min(in.MaxNumberOfMessages, 10)))
	out := &sqs.ReceiveMessageOutput{}
	for _, m := range q.msgs {
		if len(out.Messages) == n {
			break
		}
		if locked[m.group] { // a message of the group is in flight
			continue
		}
		m.receives++
		q.seq++
		m.receipt = fmt.Sprintf("rh-%d-%s", q.seq, m.id)
		visibility := 30 * time.Second
		if in.VisibilityTimeout > 0 {
			visibility = time.Duration(in.VisibilityTimeout) * time.Second
		}
		m.invisibleUntil = now.Add(visibility)
		sum := md5.Sum([]byte(m.body))
		out.Messages = append(out.Messages, sqstypes.Message{
			MessageId: aws.String(m.id), ReceiptHandle: aws.String(m.receipt), Body: aws.String(m.body),
			MD5OfBody: aws.String(hex.EncodeToString(sum[:])), MessageAttributes: m.attrs,
			Attributes: map[string]string{
				"MessageGroupId": m.group, "MessageDeduplicationId": m.dedup,
				"ApproximateReceiveCount": strconv.Itoa(m.receives),
				"SentTimestamp":           strconv.FormatInt(m.sent.UnixMilli(), 10),
			},
		})
	}
	return out, nil
}

func (q *AWSShapeFIFO) byReceipt(h string) (int, *fifoMessage) {
	for i, m := range q.msgs {
		if m.receipt == h && m.invisibleUntil.After(q.now()) {
			return i, m
		}
	}
	return -1, nil
}

// DeleteMessageBatch deletes by receipt handle (AWS refuses stale handles).
func (q *AWSShapeFIFO) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	if aws.ToString(in.QueueUrl) != q.URL {
		return q.Client.DeleteMessageBatch(ctx, in, o...)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		i, _ := q.byReceipt(aws.ToString(e.ReceiptHandle))
		if i < 0 {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true})
			continue
		}
		q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
		out.Successful = append(out.Successful, sqstypes.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// ChangeMessageVisibilityBatch sets visibility from now by receipt handle.
func (q *AWSShapeFIFO) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if aws.ToString(in.QueueUrl) != q.URL {
		return q.Client.ChangeMessageVisibilityBatch(ctx, in, o...)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	for _, e := range in.Entries {
		_, m := q.byReceipt(aws.ToString(e.ReceiptHandle))
		if m == nil || e.VisibilityTimeout < 0 || e.VisibilityTimeout > 43200 {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InvalidParameterValue"), SenderFault: true})
			continue
		}
		m.invisibleUntil = q.now().Add(time.Duration(e.VisibilityTimeout) * time.Second)
		out.Successful = append(out.Successful, sqstypes.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// Len is the number of messages in the queue, in flight or not.
func (q *AWSShapeFIFO) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// DeleteMessage deletes by receipt handle, or passes the call on.
func (q *AWSShapeFIFO) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if aws.ToString(in.QueueUrl) != q.URL {
		return q.Client.DeleteMessage(ctx, in, o...)
	}
	out, err := q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: in.QueueUrl, Entries: []sqstypes.DeleteMessageBatchRequestEntry{{Id: aws.String("0"), ReceiptHandle: in.ReceiptHandle}}})
	if err == nil && len(out.Failed) > 0 {
		err = fmt.Errorf("awsfifo: %s", aws.ToString(out.Failed[0].Code))
	}
	return &sqs.DeleteMessageOutput{}, err
}

// ChangeMessageVisibility sets visibility by receipt handle, or passes the call on.
func (q *AWSShapeFIFO) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if aws.ToString(in.QueueUrl) != q.URL {
		return q.Client.ChangeMessageVisibility(ctx, in, o...)
	}
	out, err := q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: in.QueueUrl, Entries: []sqstypes.ChangeMessageVisibilityBatchRequestEntry{{Id: aws.String("0"), ReceiptHandle: in.ReceiptHandle, VisibilityTimeout: in.VisibilityTimeout}}})
	if err == nil && len(out.Failed) > 0 {
		err = fmt.Errorf("awsfifo: %s", aws.ToString(out.Failed[0].Code))
	}
	return &sqs.ChangeMessageVisibilityOutput{}, err
}

// Visible reports whether the message with this body is in the queue and not in flight.
func (q *AWSShapeFIFO) Visible(body string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if m.body == body {
			return !m.invisibleUntil.After(q.now())
		}
	}
	return false
}
