// Package deadletter moves a message to a dead-letter queue with the reason
// it can never be delivered. Only our code moves messages there, and only
// for a reason of the message's own (invalid payload, permanent refusal by
// the site, N counted failures); the reason travels with it as the
// failure_reason attribute (message.AttrFailureReason), so an operator can read it and redrive.
package deadletter

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/message"
)

// maxReasonBytes keeps the reason readable and well inside SQS's limits.
const maxReasonBytes = 1024

// maxAttributes is SQS's limit of message attributes per message.
const maxAttributes = 10

// Sender is the SQS call a move needs.
type Sender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Message is what is moved: the original body and attributes and, for a
// FIFO dead-letter queue, the group and deduplication ids.
type Message struct {
	Body            string
	Attributes      map[string]sqstypes.MessageAttributeValue
	GroupID         string
	DeduplicationID string
}

// Move sends m to the queue at url with the reason attached. The caller
// deletes the original only after Move returned nil.
func Move(ctx context.Context, client Sender, url string, m Message, reason string) error {
	attrs := make(map[string]sqstypes.MessageAttributeValue, len(m.Attributes)+1)
	for k, v := range m.Attributes {
		attrs[k] = v
	}
	if _, ok := attrs[message.AttrFailureReason]; !ok && len(attrs) >= maxAttributes {
		// No room: drop the alphabetically last attribute and say so.
		names := make([]string, 0, len(attrs))
		for k := range attrs {
			names = append(names, k)
		}
		slices.Sort(names)
		dropped := names[len(names)-1]
		delete(attrs, dropped)
		reason += fmt.Sprintf(" (attribute %q dropped to make room for this reason)", dropped)
	}
	attrs[message.AttrFailureReason] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(Truncate(reason, maxReasonBytes))}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(m.Body), MessageAttributes: attrs}
	if m.GroupID != "" {
		in.MessageGroupId = aws.String(m.GroupID)
		in.MessageDeduplicationId = aws.String(m.DeduplicationID)
	}
	if _, err := client.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("move to the dead-letter queue: %w", err)
	}
	return nil
}

// Truncate cuts s to at most n bytes without splitting a character (SQS
// refuses invalid UTF-8 in attributes).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
