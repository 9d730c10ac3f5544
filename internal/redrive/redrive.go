// Package redrive moves dead-lettered messages back to the queue they came
// from, after counting them by failure_reason, so an operator sees what is
// about to be retried (and can stop at the count: a dry run).
//
// A message keeps its body, its attributes (failure_reason removed: a new
// failure writes a new one) and its group; its deduplication id is derived
// from its id in the dead-letter queue, so a redrive that is interrupted
// between the send and the delete and run again within SQS's 5-minute
// deduplication window cannot queue it twice, while a message dead-lettered
// minutes after its first send is not swallowed as a duplicate of it. The
// consumers' own ledgers (the limiter's slot, the scraper's sent marks, both
// keyed by messageId) keep a message that was in fact delivered from going
// out again.
package redrive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/message"
)

// SQSAPI is what a redrive calls.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// DefaultHold is cmd/redrive's -hold: SQS's deduplication window, so a
// message the redrive sent back but could not delete is not received
// again (and sent twice) within it.
const DefaultHold = 5 * time.Minute

// Config of one redrive.
type Config struct {
	DeadLetterURL, SourceURL string
	// DryRun counts without moving (the messages are back in the DLQ,
	// visible, at the end).
	DryRun bool
	// Max bounds how many messages are looked at (0: all).
	Max int
	// Hold is how long a received message stays invisible in the DLQ
	// while the redrive works on it (required; DefaultHold).
	Hold time.Duration
}

// Report is what a redrive saw and did.
type Report struct {
	ByReason map[string]int
	// Total is the DLQ's depth when the redrive started. A dry run of a
	// FIFO DLQ sees fewer (Seen): it holds what it received, and SQS hands
	// out no later message of a group while an earlier one is held.
	Total int
	Seen  int
	Moved int
	// Failed messages stay in the DLQ (visible again after Hold).
	Failed int
}

// Reasons returns the reasons, most frequent first.
func (r Report) Reasons() []string {
	out := make([]string, 0, len(r.ByReason))
	for k := range r.ByReason {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if r.ByReason[out[i]] != r.ByReason[out[j]] {
			return r.ByReason[out[i]] > r.ByReason[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

// NoReason labels messages without failure_reason (the queue's own
// maxReceiveCount backstop put them there).
const NoReason = "(no failure_reason: moved by maxReceiveCount)"

// Run receives every message of the DLQ once, counts it, and (unless
// DryRun) sends it back to the source and deletes it from the DLQ, in the
// order received (a FIFO DLQ hands a group out in order).
func Run(ctx context.Context, client SQSAPI, cfg Config) (Report, error) {
	if cfg.DeadLetterURL == "" || cfg.SourceURL == "" {
		return Report{}, errors.New("redrive: dead-letter and source queue URLs are required")
	}
	if cfg.Hold <= 0 {
		return Report{}, fmt.Errorf("redrive: hold %s must be positive (DefaultHold is the command's -hold default)", cfg.Hold)
	}
	rep := Report{ByReason: map[string]int{}}
	if out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(cfg.DeadLetterURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}}); err == nil {
		_, _ = fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], &rep.Total)
	}
	var held []sqstypes.Message // dry run: released at the end
	defer func() {
		for _, m := range held {
			_, _ = client.ChangeMessageVisibility(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(cfg.DeadLetterURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
		}
	}()
	for cfg.Max == 0 || rep.Seen < cfg.Max {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(cfg.DeadLetterURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			VisibilityTimeout:           int32(cfg.Hold / time.Second),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return rep, fmt.Errorf("redrive: receive from the DLQ: %w", err)
		}
		if len(out.Messages) == 0 {
			return rep, nil
		}
		for _, m := range out.Messages {
			if cfg.Max > 0 && rep.Seen >= cfg.Max {
				held = append(held, m) // over the limit: back at once
				continue
			}
			rep.Seen++
			rep.ByReason[reason(m)]++
			if cfg.DryRun {
				held = append(held, m)
				continue
			}
			if err := move(ctx, client, cfg, m); err != nil {
				rep.Failed++
				return rep, err // stop: the group's later messages must not overtake it
			}
			rep.Moved++
		}
	}
	return rep, nil
}

func reason(m sqstypes.Message) string {
	if v, ok := m.MessageAttributes[message.AttrFailureReason]; ok && aws.ToString(v.StringValue) != "" {
		return aws.ToString(v.StringValue)
	}
	return NoReason
}

func move(ctx context.Context, client SQSAPI, cfg Config, m sqstypes.Message) error {
	attrs := map[string]sqstypes.MessageAttributeValue{}
	for k, v := range m.MessageAttributes {
		if k != message.AttrFailureReason {
			attrs[k] = v
		}
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(cfg.SourceURL), MessageBody: m.Body, MessageAttributes: attrs}
	if strings.HasSuffix(cfg.SourceURL, ".fifo") {
		group, dedup := message.RedriveIDs(m.Attributes, aws.ToString(m.MessageId))
		in.MessageGroupId, in.MessageDeduplicationId = aws.String(group), aws.String(dedup)
	}
	if _, err := client.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("redrive: send %s back: %w", aws.ToString(m.MessageId), err)
	}
	if _, err := client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(cfg.DeadLetterURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		// Sent but still in the DLQ: a second redrive within 5 minutes is
		// deduplicated; after that the consumers' ledgers hold.
		return fmt.Errorf("redrive: %s sent back but not deleted from the DLQ: %w", aws.ToString(m.MessageId), err)
	}
	return nil
}
