// Package handler is the rate limiter Lambda: it reads batches from
// huntaze-rate-limiter-queue, asks the limiter about every record in one
// Redis call, forwards approved messages to huntaze-hybrid-workflows.fifo and
// returns the others to their queue at the time their turn comes.
//
// Every record ends in exactly one of: forwarded (Lambda deletes it), listed
// in batchItemFailures with a new visibility (it comes back), or moved to the
// rate limiter DLQ (poison). Nothing is dropped.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
)

// Attributes the limiter adds to a forwarded message (seed 003 R2.4).
const (
	AttrRateLimitTimestamp = "rate_limit_timestamp"
	AttrTokensRemaining    = "tokens_remaining"
	AttrRateLimiterVersion = "rate_limiter_version"
	// AttrRejection carries the reason a poison record was moved to the DLQ.
	AttrRejection = "rate_limiter_rejection"
)

// Metric names (seed 003 R5.4 and issue 3).
const (
	MetricAllowed         = "rate_limit_allowed_count"
	MetricRejected        = "rate_limit_rejected_count"
	MetricForwardFailures = "forward_failures"
	MetricRedisErrors     = "redis_errors"
	MetricPoison          = "poison_messages"
	MetricBatchDuration   = "batch_duration"
)

// MaxVisibility is the longest ChangeMessageVisibility accepts (12 h).
const MaxVisibility = 12 * time.Hour

// maxAttributes is SQS's limit of message attributes per message.
const maxAttributes = 10

// SQSAPI is the part of the SQS client the handler uses.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Decider decides a batch of requests atomically (ratelimit.Limiter).
type Decider interface {
	Decide(ctx context.Context, reqs []ratelimit.Request) ([]ratelimit.Decision, error)
}

// Config of the handler.
type Config struct {
	SourceQueueURL     string // huntaze-rate-limiter-queue (visibility changes)
	WorkflowsQueueURL  string // huntaze-hybrid-workflows.fifo (forwarding)
	DeadLetterQueueURL string // huntaze-rate-limiter-dlq (poison records)
	Version            string // rate_limiter_version attribute
	// RedisErrorBackoff is the visibility given to every record of a batch
	// when Redis cannot decide (fail closed).
	RedisErrorBackoff time.Duration
	// ForwardFailureBackoff is the visibility of a record whose forward to
	// the FIFO queue failed.
	ForwardFailureBackoff time.Duration
}

// Validate reports missing settings.
func (c Config) Validate() error {
	var errs []error
	for name, v := range map[string]string{"source queue URL": c.SourceQueueURL, "workflows queue URL": c.WorkflowsQueueURL, "dead-letter queue URL": c.DeadLetterQueueURL, "version": c.Version} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	if c.RedisErrorBackoff <= 0 || c.ForwardFailureBackoff <= 0 {
		errs = append(errs, errors.New("backoffs must be positive"))
	}
	return errors.Join(errs...)
}

// Handler is the Lambda handler with its dependencies.
type Handler struct {
	cfg     Config
	limiter Decider
	sqs     SQSAPI
	log     *slog.Logger
	metrics *metrics.Emitter
	now     func() time.Time
}

// New returns a handler. now is only used to time batches; decisions use
// the Redis clock.
func New(cfg Config, limiter Decider, client SQSAPI, log *slog.Logger, m *metrics.Emitter, now func() time.Time) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rate limiter config: %w", err)
	}
	if limiter == nil || client == nil || log == nil || m == nil || now == nil {
		return nil, errors.New("rate limiter: every dependency is required")
	}
	return &Handler{cfg: cfg, limiter: limiter, sqs: client, log: log, metrics: m, now: now}, nil
}

// record is one SQS record with its parsed message.
type record struct {
	raw events.SQSMessage
	msg message.Message
}

// batch collects the outcome of one invocation.
type batch struct {
	failures []events.SQSBatchItemFailure
	retry    []visibility
	m        *metrics.Set
}

type visibility struct {
	rec   events.SQSMessage
	after time.Duration
}

func (b *batch) returnLater(rec events.SQSMessage, after time.Duration) {
	b.failures = append(b.failures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
	b.retry = append(b.retry, visibility{rec: rec, after: after})
}

// Handle processes one batch. It returns an error only if it cannot even
// report per-record results; every record-level problem is in the response.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	start := h.now()
	b := &batch{m: metrics.NewSet()}
	for _, n := range []string{MetricAllowed, MetricRejected, MetricForwardFailures, MetricRedisErrors, MetricPoison} {
		b.m.Add(n, metrics.Count, 0)
	}

	var valid []record
	for _, raw := range ev.Records {
		msg, reason := parseRecord(raw)
		if reason != "" {
			h.deadLetter(ctx, b, raw, reason)
			continue
		}
		valid = append(valid, record{raw: raw, msg: msg})
	}

	if len(valid) > 0 {
		h.decideAndForward(ctx, b, valid)
	}
	h.changeVisibility(ctx, b.retry)

	b.m.Put(MetricBatchDuration, metrics.Milliseconds, float64(h.now().Sub(start).Microseconds())/1000)
	if err := h.metrics.Emit(b.m); err != nil {
		h.log.Warn("metrics not written", "error", err)
	}
	return events.SQSEventResponse{BatchItemFailures: b.failures}, nil
}

// parseRecord returns the message of a record, or why it can never be
// forwarded.
func parseRecord(raw events.SQSMessage) (message.Message, string) {
	msg, err := message.Parse([]byte(raw.Body))
	if err != nil {
		return message.Message{}, "unparseable body: " + err.Error()
	}
	if err := msg.Validate(); err != nil {
		return message.Message{}, err.Error()
	}
	if msg.CreatorKey() == "" {
		return message.Message{}, "no creator key (creatorId or userId)"
	}
	if n := len(raw.MessageAttributes); n+3 > maxAttributes {
		return message.Message{}, fmt.Sprintf("%d message attributes leave no room for the 3 the limiter adds (SQS allows %d)", n, maxAttributes)
	}
	return msg, ""
}

// deadLetter moves a poison record to the rate limiter DLQ at once (instead
// of letting it be received maxReceiveCount times), keeping its body and
// attributes and adding the reason. If the DLQ send fails, the record is
// returned to its queue and tried again later.
func (h *Handler) deadLetter(ctx context.Context, b *batch, raw events.SQSMessage, reason string) {
	b.m.Add(MetricPoison, metrics.Count, 1)
	attrs := toSendAttributes(raw.MessageAttributes)
	if len(attrs) < maxAttributes {
		attrs[AttrRejection] = stringAttr(truncate(reason, 1024))
	}
	_, err := h.sqs.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(h.cfg.DeadLetterQueueURL),
		MessageBody:       aws.String(raw.Body),
		MessageAttributes: attrs,
	})
	if err != nil {
		h.log.Error("poison record not moved to the DLQ; it will be retried", "sqs_message_id", raw.MessageId, "reason", reason, "error", err)
		b.returnLater(raw, h.cfg.ForwardFailureBackoff)
		return
	}
	h.log.Warn("poison record moved to the DLQ", "sqs_message_id", raw.MessageId, "reason", reason)
}

func (h *Handler) decideAndForward(ctx context.Context, b *batch, recs []record) {
	reqs := make([]ratelimit.Request, len(recs))
	for i, r := range recs {
		reqs[i] = ratelimit.Request{Key: r.msg.CreatorKey(), ID: r.msg.MessageID}
	}
	decisions, err := h.limiter.Decide(ctx, reqs)
	if err != nil {
		// Fail closed: without a decision nothing may reach OnlyFans.
		b.m.Add(MetricRedisErrors, metrics.Count, 1)
		h.log.Error("rate limiter unavailable; returning the whole batch", "records", len(recs), "backoff_ms", h.cfg.RedisErrorBackoff.Milliseconds(), "error", err)
		for _, r := range recs {
			b.returnLater(r.raw, h.cfg.RedisErrorBackoff)
		}
		return
	}

	var approved []record
	var approvals []ratelimit.Decision
	for i, r := range recs {
		d := decisions[i]
		h.log.Info("rate limit decision",
			"message_id", r.msg.MessageID, "creator_id", r.msg.CreatorKey(), "allowed", d.Allowed,
			"retry_after_ms", d.RetryAfter.Milliseconds(), "tokens_remaining", d.Remaining,
			"receive_count", r.raw.Attributes["ApproximateReceiveCount"])
		if d.Allowed {
			b.m.Add(MetricAllowed, metrics.Count, 1)
			approved = append(approved, r)
			approvals = append(approvals, d)
			continue
		}
		// Denied is the normal path under load: not an error.
		b.m.Add(MetricRejected, metrics.Count, 1)
		b.returnLater(r.raw, d.RetryAfter)
	}
	h.forward(ctx, b, approved, approvals)
}

// forward sends approved records to the FIFO queue in one SendMessageBatch
// per 10 and retries only the entries that failed, once. The approval's token
// stays spent whatever happens: a record that comes back is decided again.
func (h *Handler) forward(ctx context.Context, b *batch, recs []record, ds []ratelimit.Decision) {
	for start := 0; start < len(recs); start += 10 {
		end := min(start+10, len(recs))
		entries := make(map[string]sqstypes.SendMessageBatchRequestEntry, end-start)
		byID := make(map[string]record, end-start)
		order := make([]string, 0, end-start)
		for i := start; i < end; i++ {
			id := strconv.Itoa(i)
			entry, err := h.entry(id, recs[i], ds[i])
			if err != nil { // only a message that cannot be encoded: not seen in practice
				h.forwardFailed(b, recs[i], err.Error())
				continue
			}
			entries[id], byID[id] = entry, recs[i]
			order = append(order, id)
		}
		failed := h.sendBatch(ctx, entries, order)
		if len(failed) > 0 {
			retryOrder := make([]string, 0, len(failed))
			for _, id := range order {
				if _, ok := failed[id]; ok {
					retryOrder = append(retryOrder, id)
				}
			}
			failed = h.sendBatch(ctx, entries, retryOrder)
		}
		for _, id := range order {
			if reason, ok := failed[id]; ok {
				h.forwardFailed(b, byID[id], reason)
			}
		}
	}
}

// sendBatch sends the entries named by ids (in order: FIFO keeps the order
// of a batch within a group) and returns the failed ids with their reasons.
func (h *Handler) sendBatch(ctx context.Context, entries map[string]sqstypes.SendMessageBatchRequestEntry, ids []string) map[string]string {
	if len(ids) == 0 {
		return nil
	}
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(h.cfg.WorkflowsQueueURL)}
	for _, id := range ids {
		in.Entries = append(in.Entries, entries[id])
	}
	out, err := h.sqs.SendMessageBatch(ctx, in)
	failed := map[string]string{}
	if err != nil {
		for _, id := range ids {
			failed[id] = err.Error()
		}
		return failed
	}
	for _, f := range out.Failed {
		failed[aws.ToString(f.Id)] = fmt.Sprintf("%s: %s (sender fault %t)", aws.ToString(f.Code), aws.ToString(f.Message), f.SenderFault)
	}
	return failed
}

func (h *Handler) forwardFailed(b *batch, r record, reason string) {
	b.m.Add(MetricForwardFailures, metrics.Count, 1)
	h.log.Error("forward to the workflows queue failed; the message will be decided again",
		"message_id", r.msg.MessageID, "creator_id", r.msg.CreatorKey(), "error", reason)
	b.returnLater(r.raw, h.cfg.ForwardFailureBackoff)
}

// entry builds the FIFO entry: original body and attributes, plus the
// limiter's own attributes.
func (h *Handler) entry(id string, r record, d ratelimit.Decision) (sqstypes.SendMessageBatchRequestEntry, error) {
	dedup, err := r.msg.DeduplicationID()
	if err != nil {
		return sqstypes.SendMessageBatchRequestEntry{}, err
	}
	attrs := toSendAttributes(r.raw.MessageAttributes)
	attrs[AttrRateLimitTimestamp] = numberAttr(d.At.UnixMilli())
	attrs[AttrTokensRemaining] = numberAttr(int64(d.Remaining))
	attrs[AttrRateLimiterVersion] = stringAttr(h.cfg.Version)
	return sqstypes.SendMessageBatchRequestEntry{
		Id:                     aws.String(id),
		MessageBody:            aws.String(r.raw.Body),
		MessageGroupId:         aws.String(r.msg.CreatorKey()),
		MessageDeduplicationId: aws.String(dedup),
		MessageAttributes:      attrs,
	}, nil
}

// changeVisibility sets when each returned record comes back, 10 per call.
// A failure here loses nothing: the record is in batchItemFailures and comes
// back when its current visibility timeout ends.
func (h *Handler) changeVisibility(ctx context.Context, vs []visibility) {
	for start := 0; start < len(vs); start += 10 {
		chunk := vs[start:min(start+10, len(vs))]
		in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(h.cfg.SourceQueueURL)}
		for i, v := range chunk {
			in.Entries = append(in.Entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				ReceiptHandle:     aws.String(v.rec.ReceiptHandle),
				VisibilityTimeout: VisibilitySeconds(v.after),
			})
		}
		out, err := h.sqs.ChangeMessageVisibilityBatch(ctx, in)
		if err != nil {
			h.log.Warn("visibility not changed; records come back after the queue's visibility timeout", "records", len(chunk), "error", err)
			continue
		}
		for _, f := range out.Failed {
			i, _ := strconv.Atoi(aws.ToString(f.Id))
			h.log.Warn("visibility not changed; record comes back after the queue's visibility timeout",
				"sqs_message_id", chunk[i].rec.MessageId, "error", aws.ToString(f.Message))
		}
	}
}

// VisibilitySeconds rounds a retry delay up to whole seconds (so a message
// never comes back before its slot), at least 1 s and at most 12 h.
func VisibilitySeconds(d time.Duration) int32 {
	s := math.Ceil(d.Seconds())
	return int32(min(max(s, 1), MaxVisibility.Seconds()))
}

func toSendAttributes(in map[string]events.SQSMessageAttribute) map[string]sqstypes.MessageAttributeValue {
	out := make(map[string]sqstypes.MessageAttributeValue, len(in)+3)
	for k, v := range in {
		out[k] = sqstypes.MessageAttributeValue{
			DataType:         aws.String(v.DataType),
			StringValue:      v.StringValue,
			BinaryValue:      v.BinaryValue,
			StringListValues: v.StringListValues,
			BinaryListValues: v.BinaryListValues,
		}
	}
	return out
}

func stringAttr(s string) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

func numberAttr(n int64) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(n, 10))}
}

// truncate cuts s to at most n bytes without splitting a character (SQS
// refuses invalid UTF-8 in attributes).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
