package scraper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/huntaze/message-pipeline/internal/deadletter"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/sqslimits"
)

// AttrFailureReason is set on messages the scraper moves to the DLQ.
const AttrFailureReason = message.AttrFailureReason

// SQSAPI is the part of the SQS client the consumer uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Claims makes one consumer the only one working on a queue message.
type Claims interface {
	// Claim takes or renews id for owner for ttl and returns how long
	// another owner still holds it (0: owner has it).
	Claim(ctx context.Context, id, owner string, ttl time.Duration) (time.Duration, error)
	Unclaim(ctx context.Context, id, owner string) error
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
	// Heartbeat is the visibility every received, unfinished message is
	// given again every Heartbeat/3 (and the life of its claim), so no
	// other consumer receives it while it waits for its group or is being
	// sent, however slow the site; a task that dies frees its messages
	// after at most Heartbeat.
	Heartbeat time.Duration
	// Owner names this consumer in claims (unique per process).
	Owner string
}

// Consumer receives batches and processes them group by group.
type Consumer struct {
	cfg    ConsumerConfig
	sqs    SQSAPI
	claims Claims
	proc   *Processor
	log    *slog.Logger
}

// NewConsumer returns a consumer.
func NewConsumer(cfg ConsumerConfig, client SQSAPI, claims Claims, proc *Processor, log *slog.Logger) *Consumer {
	// An identity, not a setting: two consumers never share one.
	if cfg.Owner == "" {
		cfg.Owner = uuid.NewString()
	}
	return &Consumer{cfg: cfg, sqs: client, claims: claims, proc: proc, log: log}
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
// never overtake it. Until a message is finished, the batch's heartbeat
// keeps it invisible and its claim alive.
func (c *Consumer) ProcessBatch(stop, work context.Context, msgs []sqstypes.Message) {
	if len(msgs) == 0 {
		return
	}
	b := c.newBatch(work, msgs)
	defer b.close()
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
				b.release(work, ms, "shutting down")
				return
			}
			defer func() { <-sem }()
			for i, m := range ms {
				if stop.Err() != nil {
					b.release(work, ms[i:], "shutting down")
					return
				}
				if !b.process(work, m) {
					return
				}
			}
		}(groups[g])
	}
	wg.Wait()
}

// batch is one receive's messages: the time of the receive (the 12 h
// visibility cap counts from it) and the heartbeat of those not finished.
type batch struct {
	c        *Consumer
	received time.Time
	mu       sync.Mutex // held during a beat, so a finish never races one
	live     map[string]*liveMessage
	stopBeat context.CancelFunc
	beating  sync.WaitGroup
}

type liveMessage struct {
	m       sqstypes.Message
	claimed bool
}

func (c *Consumer) newBatch(work context.Context, msgs []sqstypes.Message) *batch {
	b := &batch{c: c, received: time.Now(), live: map[string]*liveMessage{}}
	for _, m := range msgs {
		b.live[aws.ToString(m.MessageId)] = &liveMessage{m: m}
	}
	ctx, cancel := context.WithCancel(work)
	b.stopBeat = cancel
	b.beating.Add(1)
	go func() {
		defer b.beating.Done()
		t := time.NewTicker(c.cfg.Heartbeat / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.beat(ctx)
			}
		}
	}()
	return b
}

func (b *batch) close() {
	b.stopBeat()
	b.beating.Wait()
}

// beat gives every unfinished message Heartbeat more visibility (one batch
// call) and renews the claims of those being worked on.
func (b *batch) beat(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.live) == 0 {
		return
	}
	secs := sqslimits.VisibilitySeconds(b.c.cfg.Heartbeat, time.Since(b.received))
	var entries []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	for id, lm := range b.live {
		entries = append(entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(batchEntryID(id)), ReceiptHandle: lm.m.ReceiptHandle, VisibilityTimeout: secs})
		if lm.claimed {
			if held, err := b.c.claims.Claim(ctx, id, b.c.cfg.Owner, b.c.cfg.Heartbeat); err != nil || held > 0 {
				b.c.log.Warn("claim not renewed", "sqs_message_id", id, "correlation_id", correlationOf(lm.m), "held_by_another_ms", held.Milliseconds(), "error", err)
			}
		}
	}
	out, err := b.c.sqs.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(b.c.cfg.QueueURL), Entries: entries})
	if err != nil {
		b.c.log.Warn("heartbeat failed; the claims still keep other consumers off", "messages", len(entries), "error", err)
		return
	}
	for _, f := range out.Failed {
		b.c.log.Warn("heartbeat refused for a message", "entry", aws.ToString(f.Id), "code", aws.ToString(f.Code), "error", aws.ToString(f.Message))
	}
}

// batchEntryID makes an SQS message id a valid batch entry id
// (alphanumerics, hyphens, underscores).
func batchEntryID(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			return r
		}
		return '_'
	}, id)
}

// finish takes m off the heartbeat (after any beat under way), so the
// visibility the caller sets next is the last word.
func (b *batch) finish(m sqstypes.Message) (claimed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id := aws.ToString(m.MessageId)
	if lm, ok := b.live[id]; ok {
		claimed = lm.claimed
		delete(b.live, id)
	}
	return claimed
}

// process claims, processes and settles one message and reports whether
// it is gone from the queue (so its group may go on). A message another
// consumer has claimed (its visibility lapsed there) waits as long as that
// claim, with its group behind it.
func (b *batch) process(ctx context.Context, m sqstypes.Message) bool {
	c, id := b.c, aws.ToString(m.MessageId)
	held, err := c.claims.Claim(ctx, id, c.cfg.Owner, c.cfg.Heartbeat)
	switch {
	case err != nil:
		// The processor's ledger check fails without Redis too and then
		// sends nothing; with Redis back, the heartbeat alone holds.
		c.log.Warn("claim not taken", "sqs_message_id", id, "correlation_id", correlationOf(m), "error", err)
	case held > 0:
		c.log.Warn("message claimed by another consumer; it waits for that claim", "sqs_message_id", id, "correlation_id", correlationOf(m), "held_ms", held.Milliseconds())
		out := Outcome{Fate: Released, Delay: held}
		b.settle(ctx, m, out)
		b.hold(ctx, m, out)
		return false
	default:
		b.mu.Lock()
		b.live[id].claimed = true
		b.mu.Unlock()
	}
	out := c.proc.Process(ctx, m)
	if b.settle(ctx, m, out) {
		return true
	}
	// The later messages wait with this one: the group must come back
	// whole and in order.
	b.hold(ctx, m, out)
	return false
}

// settle carries out an outcome, gives up the claim, and reports whether
// the message is gone from the queue.
func (b *batch) settle(ctx context.Context, m sqstypes.Message, out Outcome) bool {
	c := b.c
	claimed := b.finish(m)
	if claimed {
		defer func() {
			if err := c.claims.Unclaim(ctx, aws.ToString(m.MessageId), c.cfg.Owner); err != nil {
				c.log.Warn("claim not given up; it lapses by itself", "sqs_message_id", aws.ToString(m.MessageId), "correlation_id", correlationOf(m), "error", err)
			}
		}()
	}
	switch out.Action() {
	case Delete:
		return c.delete(ctx, m)
	case DeadLetter:
		if err := c.deadLetter(ctx, m, out); err != nil {
			c.deadLetterFailed(m, err)
			b.setVisibility(ctx, m, c.dlqRetryDelay(m))
			return false
		}
		return c.delete(ctx, m)
	default:
		b.setVisibility(ctx, m, out.Delay)
		return false
	}
}

// hold returns the messages of head's group after it with head's delay, so
// none of them becomes visible before it.
func (b *batch) hold(ctx context.Context, head sqstypes.Message, out Outcome) {
	delay := out.Delay
	switch out.Action() {
	case Delete: // its delete failed: it is back after the queue's timeout
		delay = b.c.proc.cfg.Backoff(1)
	case DeadLetter: // its move failed: it is back after dlqRetryDelay
		delay = b.c.dlqRetryDelay(head)
	}
	for _, m := range b.after(head) {
		b.finish(m)
		b.setVisibility(ctx, m, delay)
		b.c.log.Info("message held behind an earlier one of its group", "sqs_message_id", aws.ToString(m.MessageId), "correlation_id", correlationOf(m))
	}
}

// after returns the unfinished messages of head's group (all later than
// head: a group is processed in order).
func (b *batch) after(head sqstypes.Message) []sqstypes.Message {
	group := head.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []sqstypes.Message
	for _, lm := range b.live {
		if lm.m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)] == group {
			out = append(out, lm.m)
		}
	}
	return out
}

// release makes messages visible again at once without processing them.
func (b *batch) release(ctx context.Context, ms []sqstypes.Message, why string) {
	for _, m := range ms {
		b.finish(m)
		b.setVisibility(ctx, m, 0)
		b.c.log.Info("message released unprocessed", "sqs_message_id", aws.ToString(m.MessageId), "correlation_id", correlationOf(m), "reason", why)
	}
}

func (b *batch) setVisibility(ctx context.Context, m sqstypes.Message, d time.Duration) {
	secs := sqslimits.VisibilitySeconds(d, time.Since(b.received))
	if d <= 0 {
		secs = 0 // released: visible at once
	}
	if _, err := b.c.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(b.c.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: secs,
	}); err != nil {
		b.c.log.Warn("visibility not changed; message returns after the queue's timeout", "sqs_message_id", aws.ToString(m.MessageId), "correlation_id", correlationOf(m), "visibility_s", secs, "error", err)
	}
}

func (c *Consumer) delete(ctx context.Context, m sqstypes.Message) bool {
	if _, err := c.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(c.cfg.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		// It comes back after its visibility; the ledger says it was sent.
		c.log.Warn("delete failed", "sqs_message_id", aws.ToString(m.MessageId), "correlation_id", correlationOf(m), "error", err)
		return false
	}
	return true
}

// dlqRetryDelay is how long a message whose move to the DLQ failed waits
// before it is decided again: the outage delay of its receive count
// (growing, capped at 15 minutes), not a fixed backoff, so that a DLQ that
// keeps refusing (a KMS key or policy broken) spends few receives: about
// 10 days of it before the queue's maxReceiveCount would move the message
// without a reason, with an error log and a metric at every try.
func (c *Consumer) dlqRetryDelay(m sqstypes.Message) time.Duration {
	receives, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	return c.proc.cfg.outageDelay(c.proc.cfg.Backoff(1), receives)
}

// deadLetterFailed reports a failed move to the DLQ: an error log naming
// the receive count and the backstop, and MetricDeadLetterFailed.
func (c *Consumer) deadLetterFailed(m sqstypes.Message, err error) {
	receives := m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]
	c.log.Error("DLQ send failed; message stays in the queue and is decided again later (the queue's maxReceiveCount backstop would move it without a reason)",
		"sqs_message_id", aws.ToString(m.MessageId), "correlation_id", correlationOf(m), "receives", receives, "max_receive_count", c.proc.cfg.MaxReceiveCount, "error", err)
	s := metrics.NewSet()
	s.Add(MetricDeadLetterFailed, metrics.Count, 1)
	_ = c.proc.metrics.Emit(s)
}

// deadLetter moves the message to the FIFO DLQ in its group, with its
// deduplication id and attributes plus the reason.
func (c *Consumer) deadLetter(ctx context.Context, m sqstypes.Message, out Outcome) error {
	group, dedup := message.DeadLetterIDs(message.SystemGroupID(m.Attributes), message.SystemDeduplicationID(m.Attributes), aws.ToString(m.MessageId))
	return deadletter.Move(ctx, c.sqs, c.cfg.DeadLetterURL, deadletter.Message{
		Body: aws.ToString(m.Body), Attributes: m.MessageAttributes, GroupID: group, DeduplicationID: dedup,
	}, "scraper: "+out.Class+": "+out.Detail)
}

// correlationOf is the correlation id of a received message ("" when it
// was queued before the API set them).
func correlationOf(m sqstypes.Message) string {
	return message.CorrelationIDOf(message.StringValues(m.MessageAttributes))
}

// Validate reports a consumer config that cannot work.
func (c ConsumerConfig) Validate() error {
	var errs []error
	if c.QueueURL == "" || c.DeadLetterURL == "" {
		errs = append(errs, errors.New("queue and dead-letter queue URLs are required"))
	}
	if c.Heartbeat <= 0 || c.Heartbeat > MaxVisibility {
		errs = append(errs, fmt.Errorf("heartbeat must be over 0 and at most 12h, got %s", c.Heartbeat))
	}
	if c.MaxGroups < 1 {
		errs = append(errs, fmt.Errorf("max groups must be at least 1, got %d", c.MaxGroups))
	}
	if c.Wait < 0 || c.Wait > 20*time.Second {
		errs = append(errs, fmt.Errorf("wait must be 0..20s, got %s", c.Wait))
	}
	return errors.Join(errs...)
}
