package scraper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/deadletter"
	"github.com/huntaze/message-pipeline/internal/sqslimits"
)

// AttrFailureReason is set on messages the scraper moves to the DLQ.
const AttrFailureReason = deadletter.AttrFailureReason

// SQSAPI is the part of the SQS client the consumer uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// ConsumerConfig of the receive loop.
type ConsumerConfig struct {
	QueueURL, DeadLetterURL string
	// Wait is the long-polling time (20 s in AWS, seed 003 R3.4).
	Wait time.Duration
	// MaxGroups bounds how many message groups are processed in parallel.
	MaxGroups int
	// ErrorBackoff spaces receives after a receive error.
	ErrorBackoff time.Duration
}

// Consumer receives batches and processes them group by group.
type Consumer struct {
	cfg  ConsumerConfig
	sqs  SQSAPI
	proc *Processor
	log  *slog.Logger
}

// NewConsumer returns a consumer.
func NewConsumer(cfg ConsumerConfig, client SQSAPI, proc *Processor, log *slog.Logger) *Consumer {
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = 4
	}
	return &Consumer{cfg: cfg, sqs: client, proc: proc, log: log}
}

// Run receives until stop is done. Messages already started finish under
// work (which the caller cancels at the shutdown deadline); received messages
// not started when stop ends are released at once.
//
// A long poll under way when stop ends is not cancelled: SQS may already
// have handed its messages to the aborted request, and they would then stay
// invisible for the queue's whole visibility timeout. It finishes (at most
// Wait) and what it got is released.
func (c *Consumer) Run(stop, work context.Context) {
	for stop.Err() == nil {
		recv, cancel := context.WithTimeout(context.WithoutCancel(stop), c.cfg.Wait+receiveSlack)
		out, err := c.sqs.ReceiveMessage(recv, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(c.cfg.QueueURL),
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             int32(c.cfg.Wait / time.Second),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		cancel()
		if err != nil {
			if stop.Err() != nil {
				return
			}
			c.log.Error("receive failed", "error", err)
			_ = sleepCtx(stop, c.cfg.ErrorBackoff)
			continue
		}
		c.ProcessBatch(stop, work, out.Messages)
	}
}

// receiveSlack bounds a receive beyond its long-poll wait.
const receiveSlack = 10 * time.Second

// ProcessBatch processes one received batch: groups in parallel (bounded),
// each group's messages in order. After a message of a group that is not
// deleted, the group's later messages are released untouched, so they can
// never overtake it.
func (c *Consumer) ProcessBatch(stop, work context.Context, msgs []sqstypes.Message) {
	// The 12 h visibility cap counts from the receive, which just happened.
	received := time.Now()
	var order []string
	groups := map[string][]sqstypes.Message{}
	for _, m := range msgs {
		g := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], m)
	}
	sem := make(chan struct{}, c.cfg.MaxGroups)
	var wg sync.WaitGroup
	for _, g := range order {
		wg.Add(1)
		go func(ms []sqstypes.Message) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-stop.Done():
				c.release(work, ms, received, "shutting down")
				return
			}
			defer func() { <-sem }()
			for i, m := range ms {
				if stop.Err() != nil {
					c.release(work, ms[i:], received, "shutting down")
					return
				}
				out := c.proc.Process(work, m)
				if !c.apply(work, m, out, received) {
					// The later messages wait with this one: the group must
					// come back whole and in order.
					c.hold(work, ms[i+1:], out, received)
					return
				}
			}
		}(groups[g])
	}
	wg.Wait()
}

// apply carries out an outcome and reports whether the message is gone
// from the queue (so the group may go on).
func (c *Consumer) apply(ctx context.Context, m sqstypes.Message, out Outcome, received time.Time) bool {
	switch out.Action {
	case Delete:
		return c.delete(ctx, m)
	case DeadLetter:
		if err := c.deadLetter(ctx, m, out); err != nil {
			c.log.Error("DLQ send failed; message stays in the queue", "sqs_message_id", aws.ToString(m.MessageId), "error", err)
			c.setVisibility(ctx, m, c.proc.cfg.Backoff(1), received)
			return false
		}
		return c.delete(ctx, m)
	default:
		c.setVisibility(ctx, m, out.Delay, received)
		return false
	}
}

// hold returns the messages after one that stays in the queue with the same
// delay, so none of them becomes visible before it.
func (c *Consumer) hold(ctx context.Context, ms []sqstypes.Message, out Outcome, received time.Time) {
	delay := out.Delay
	if out.Action == Delete || out.Action == DeadLetter { // its delete failed: it is back after the queue's timeout
		delay = c.proc.cfg.Backoff(1)
	}
	for _, m := range ms {
		c.setVisibility(ctx, m, delay, received)
		c.log.Info("message held behind an earlier one of its group", "sqs_message_id", aws.ToString(m.MessageId))
	}
}

func (c *Consumer) delete(ctx context.Context, m sqstypes.Message) bool {
	if _, err := c.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(c.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		// It comes back after its visibility; the ledger says it was sent.
		c.log.Warn("delete failed", "sqs_message_id", aws.ToString(m.MessageId), "error", err)
		return false
	}
	return true
}

// deadLetter moves the message to the FIFO DLQ in its group, with its
// deduplication id and attributes plus the reason.
func (c *Consumer) deadLetter(ctx context.Context, m sqstypes.Message, out Outcome) error {
	group := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]
	dedup := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageDeduplicationId)]
	if group == "" {
		group = "unknown"
	}
	if dedup == "" {
		dedup = aws.ToString(m.MessageId)
	}
	return deadletter.Move(ctx, c.sqs, c.cfg.DeadLetterURL, deadletter.Message{
		Body: aws.ToString(m.Body), Attributes: m.MessageAttributes, GroupID: group, DeduplicationID: dedup,
	}, "scraper: "+out.Class+": "+out.Detail)
}

func (c *Consumer) setVisibility(ctx context.Context, m sqstypes.Message, d time.Duration, received time.Time) {
	secs := sqslimits.VisibilitySeconds(d, time.Since(received))
	if d <= 0 {
		secs = 0 // released: visible at once
	}
	if _, err := c.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(c.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: secs,
	}); err != nil {
		c.log.Warn("visibility not changed; message returns after the queue's timeout", "sqs_message_id", aws.ToString(m.MessageId), "visibility_s", secs, "error", err)
	}
}

// release makes messages visible again at once without processing them.
func (c *Consumer) release(ctx context.Context, ms []sqstypes.Message, received time.Time, why string) {
	for _, m := range ms {
		c.setVisibility(ctx, m, 0, received)
		c.log.Info("message released unprocessed", "sqs_message_id", aws.ToString(m.MessageId), "reason", why)
	}
}

// Validate reports a consumer config that cannot work.
func (c ConsumerConfig) Validate() error {
	var errs []error
	if c.QueueURL == "" || c.DeadLetterURL == "" {
		errs = append(errs, errors.New("queue and dead-letter queue URLs are required"))
	}
	if c.Wait < 0 || c.Wait > 20*time.Second {
		errs = append(errs, fmt.Errorf("wait must be 0..20s, got %s", c.Wait))
	}
	return errors.Join(errs...)
}
