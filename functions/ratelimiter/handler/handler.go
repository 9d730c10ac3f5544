// Package handler is the rate limiter Lambda: it reads batches from the FIFO
// intake queue huntaze-rate-limiter-queue.fifo (one message group per
// creator), asks the limiter about every record in one Redis call, forwards
// approved messages to huntaze-hybrid-workflows.fifo and returns the others
// to their queue at the moment their creator's window has room.
//
// Every record ends in exactly one of: forwarded (Lambda deletes it), listed
// in batchItemFailures with a new visibility (it comes back), or moved to the
// intake DLQ with its failure_reason (invalid payload only). Nothing is
// dropped, and nothing later overtakes an earlier record of its creator: the
// first record of a creator that is returned takes every later record of
// that creator in the batch back with it, with the same visibility.
//
// The RATE_LIMITER_ENABLED flag (seed 000 R7) is applied here: with the flag
// off the handler forwards every valid record in queue order without asking
// Redis. Every message takes the intake queue whatever the flag says, so
// flipping it either way while a backlog waits never lets a creator's new
// messages overtake the ones already queued.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/deadletter"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/sqslimits"
)

// Metric names (seed 003 R5.4 and the operability metrics).
const (
	MetricAllowed         = "rate_limit_allowed_count"
	MetricRejected        = "rate_limit_rejected_count"
	MetricFenced          = "rate_limit_fenced_count"
	MetricForwardFailures = "forward_failures"
	MetricRedisErrors     = "redis_errors"
	MetricPoison          = "poison_messages"
	MetricBatchDuration   = "batch_duration"
)

// receiveAllowance is how long before the invocation the event source may
// have received the batch; the 12 h visibility cap counts from the receive.
const receiveAllowance = 5 * time.Minute

// maxAttributes is SQS's limit of message attributes per message.
const maxAttributes = 10

// approvalAttributes is how many attributes a forward adds (seed 003 R2.4:
// message.Approval).
var approvalAttributes = len(message.Approval{}.SQS())

// SQSAPI is the part of the SQS client the handler uses.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Decider decides a batch of requests atomically, in order (ratelimit.Limiter).
type Decider interface {
	Decide(ctx context.Context, reqs []ratelimit.Request) ([]ratelimit.Decision, error)
}

// Flag is the RATE_LIMITER_ENABLED flag (featureflag.Flag).
type Flag interface {
	Enabled(ctx context.Context) (bool, string)
}

// MetricUnchecked counts records forwarded without the rate check (flag off).
const MetricUnchecked = "rate_limit_unchecked_count"

// Config of the handler.
type Config struct {
	IntakeQueueURL    string // huntaze-rate-limiter-queue.fifo (visibility changes)
	WorkflowsQueueURL string // huntaze-hybrid-workflows.fifo (forwarding)
	IntakeDLQURL      string // huntaze-rate-limiter-dlq.fifo (invalid payloads)
	Version           string // rate_limiter_version attribute
	// ReturnSlack is added to a denied record's RetryAfter so that it comes
	// back when its creator's window surely has room.
	ReturnSlack time.Duration
	// OutageBackoff is the first delay of records that cannot be decided or
	// forwarded (Redis or SQS down); it doubles with every receive up to
	// sqslimits.MaxOutageDelay. It is never a reason to dead-letter.
	OutageBackoff time.Duration
	// OutageBackoffMax caps that delay (at most, and by default, 15 minutes).
	OutageBackoffMax time.Duration
}

func (c Config) outage() sqslimits.Backoff {
	return sqslimits.Backoff{Base: c.OutageBackoff, Max: c.OutageBackoffMax}
}

// Validate reports missing settings.
func (c Config) Validate() error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"intake queue URL", c.IntakeQueueURL}, {"workflows queue URL", c.WorkflowsQueueURL}, {"intake dead-letter queue URL", c.IntakeDLQURL}, {"version", c.Version}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is required", f.name))
		}
	}
	if c.OutageBackoff <= 0 {
		errs = append(errs, errors.New("outage backoff must be positive"))
	}
	if c.ReturnSlack < 0 {
		errs = append(errs, errors.New("return slack must not be negative"))
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
	flag    Flag
}

// UseFlag makes the handler read f before each batch (nil: always on).
func (h *Handler) UseFlag(f Flag) { h.flag = f }

// New returns a handler. now times batches and the visibility cap;
// decisions use the Redis clock.
func New(cfg Config, limiter Decider, client SQSAPI, log *slog.Logger, m *metrics.Emitter, now func() time.Time) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rate limiter config: %w", err)
	}
	if limiter == nil || client == nil || log == nil || m == nil || now == nil {
		return nil, errors.New("rate limiter: every dependency is required")
	}
	return &Handler{cfg: cfg, limiter: limiter, sqs: client, log: log, metrics: m, now: now}, nil
}

// record is one SQS record with its parsed message, or why it has none.
type record struct {
	pos    int // position in the batch
	raw    events.SQSMessage
	msg    message.Message
	group  string
	poison string
	// correlation is the request's correlation id (correlation_id), ""
	// for a message queued before there were any.
	correlation string
}

func (r record) receiveCount() int {
	n, _ := strconv.Atoi(r.raw.Attributes["ApproximateReceiveCount"])
	return max(n, 1)
}

// batch collects the outcome of one invocation. held maps a creator whose
// record was returned to that record's position and visibility: every later
// record of the creator goes back with the same visibility.
type batch struct {
	start    time.Time
	failures []events.SQSBatchItemFailure
	retry    []visibility
	held     map[string]hold
	m        *metrics.Set
}

type hold struct {
	from  int
	after time.Duration
}

type visibility struct {
	rec         events.SQSMessage
	correlation string
	after       time.Duration
}

// returnLater lists r as failed with a new visibility. The first record of
// a creator returned sets the visibility of every later one, so the group
// comes back whole and in order.
func (b *batch) returnLater(r record, after time.Duration) {
	if h, ok := b.held[r.group]; ok && h.from < r.pos {
		after = h.after
	} else if !ok || r.pos < h.from {
		b.held[r.group] = hold{from: r.pos, after: after}
	}
	b.failures = append(b.failures, events.SQSBatchItemFailure{ItemIdentifier: r.raw.MessageId})
	b.retry = append(b.retry, visibility{rec: r.raw, correlation: r.correlation, after: after})
}

// isHeld reports whether an earlier record of r's creator was returned.
func (b *batch) isHeld(r record) bool { h, ok := b.held[r.group]; return ok && h.from < r.pos }

// Handle processes one batch. It returns an error only if it cannot even
// report per-record results; every record-level problem is in the response.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	b := &batch{start: h.now(), held: map[string]hold{}, m: metrics.NewSet()}
	for _, n := range []string{MetricAllowed, MetricRejected, MetricFenced, MetricForwardFailures, MetricRedisErrors, MetricPoison, MetricUnchecked} {
		b.m.Add(n, metrics.Count, 0)
	}

	var valid []record
	for i, raw := range ev.Records {
		r := parseRecord(raw)
		r.pos = i
		switch {
		case b.isHeld(r):
			b.returnLater(r, 0)
		case r.poison != "":
			h.deadLetter(ctx, b, r)
		default:
			valid = append(valid, r)
		}
	}
	if len(valid) > 0 {
		h.decideAndForward(ctx, b, valid)
	}
	h.changeVisibility(ctx, b)

	b.m.Put(MetricBatchDuration, metrics.Milliseconds, float64(h.now().Sub(b.start).Microseconds())/1000)
	if err := h.metrics.Emit(b.m); err != nil {
		h.log.Warn("metrics not written", "error", err)
	}
	return events.SQSEventResponse{BatchItemFailures: b.failures}, nil
}

// parseRecord returns the record with its message, or why it can never be
// forwarded.
func parseRecord(raw events.SQSMessage) record {
	r := record{raw: raw, group: message.SystemGroupID(raw.Attributes), correlation: message.CorrelationIDOf(stringValues(raw.MessageAttributes))}
	msg, err := message.Parse([]byte(raw.Body))
	var invalid error
	if err == nil {
		invalid = msg.Validate()
	}
	switch {
	case err != nil:
		r.poison = "unparseable body: " + err.Error()
	case invalid != nil:
		r.poison = invalid.Error()
	case msg.CreatorKey() == "":
		r.poison = "no creator key (creatorId or userId)"
	case len(raw.MessageAttributes)+approvalAttributes > maxAttributes:
		r.poison = fmt.Sprintf("%d message attributes leave no room for the %d the limiter adds (SQS allows %d)", len(raw.MessageAttributes), approvalAttributes, maxAttributes)
	default:
		r.msg = msg
		r.msg.CorrelationID = r.correlation
		if r.group == "" { // not from a FIFO queue: the creator is the group
			r.group = msg.CreatorKey()
		}
	}
	return r
}

// deadLetter moves an invalid record to the intake DLQ at once, keeping its
// body, attributes and group and adding the reason. If the move fails, the
// record and its creator's later records come back after an outage delay.
func (h *Handler) deadLetter(ctx context.Context, b *batch, r record) {
	b.m.Add(MetricPoison, metrics.Count, 1)
	group, dedup := message.DeadLetterIDs(r.group, message.SystemDeduplicationID(r.raw.Attributes), r.raw.MessageId)
	err := deadletter.Move(ctx, h.sqs, h.cfg.IntakeDLQURL, deadletter.Message{
		Body: r.raw.Body, Attributes: toSendAttributes(r.raw.MessageAttributes), GroupID: group, DeduplicationID: dedup,
	}, "rate limiter: "+r.poison)
	if err != nil {
		h.log.Error("invalid record not moved to the DLQ; it will be tried again", "sqs_message_id", r.raw.MessageId, "correlation_id", r.correlation, "failure_reason", r.poison, "error", err)
		b.returnLater(r, h.cfg.outage().Delay(r.receiveCount()))
		return
	}
	h.log.Warn("invalid record moved to the DLQ", "sqs_message_id", r.raw.MessageId, "correlation_id", r.correlation, "failure_reason", r.poison)
}

func (h *Handler) decideAndForward(ctx context.Context, b *batch, recs []record) {
	reqs := make([]ratelimit.Request, len(recs))
	for i, r := range recs {
		reqs[i] = ratelimit.Request{Key: r.msg.CreatorKey(), ID: r.msg.MessageID}
	}
	enabled := true
	if h.flag != nil {
		enabled, _ = h.flag.Enabled(ctx)
	}
	var decisions []ratelimit.Decision
	var err error
	if enabled {
		decisions, err = h.limiter.Decide(ctx, reqs)
	} else {
		// Flag off: no rate check, same order. Remaining -1 marks it in the
		// forwarded message's tokens_remaining attribute.
		at := h.now()
		decisions = make([]ratelimit.Decision, len(reqs))
		for i := range decisions {
			decisions[i] = ratelimit.Decision{Allowed: true, Remaining: -1, At: at}
		}
		b.m.Add(MetricUnchecked, metrics.Count, float64(len(reqs)))
	}
	if err != nil {
		// Fail closed: without a decision nothing may reach OnlyFans. Not the
		// message's fault: it waits, longer with every receive.
		b.m.Add(MetricRedisErrors, metrics.Count, 1)
		h.log.Error("rate limiter unavailable; returning the whole batch", "records", len(recs), "error", err)
		for _, r := range recs {
			b.returnLater(r, h.cfg.outage().Delay(r.receiveCount()))
		}
		return
	}

	var approved []approval
	for i, r := range recs {
		d := decisions[i]
		h.log.Info("rate limit decision",
			"message_id", r.msg.MessageID, "correlation_id", r.msg.CorrelationID, "creator_id", r.msg.CreatorKey(), "allowed", d.Allowed,
			"retry_after_ms", d.RetryAfter.Milliseconds(), "tokens_remaining", d.Remaining, "fenced", d.Fenced,
			"receive_count", r.receiveCount(), "rate_checked", enabled)
		switch {
		case d.Allowed && !b.isHeld(r):
			b.m.Add(MetricAllowed, metrics.Count, 1)
			approved = append(approved, approval{rec: r, decision: d})
		case d.Allowed:
			// Approved, but an earlier record of its creator went back (its
			// DLQ move failed): it must not overtake it. Its token stays spent.
			b.returnLater(r, 0)
		default:
			// Denied is the normal path under load: not an error.
			b.m.Add(MetricRejected, metrics.Count, 1)
			if d.Fenced {
				b.m.Add(MetricFenced, metrics.Count, 1)
			}
			b.returnLater(r, d.RetryAfter+h.cfg.ReturnSlack)
		}
	}
	h.forward(ctx, b, approved)
}

type approval struct {
	rec      record
	decision ratelimit.Decision
}

// forward sends approved records to the FIFO queue in rounds: round k holds
// the k-th approved record of every creator, in batch order, split by SQS's
// count and size limits. Entries that fail are retried once; a record that
// still fails goes back with every later record of its creator, which are
// therefore never sent ahead of it. A token stays spent whatever happens: a
// record that comes back is decided again.
func (h *Handler) forward(ctx context.Context, b *batch, approved []approval) {
	var rounds [][]approval
	seen := map[string]int{}
	for _, a := range approved {
		k := seen[a.rec.group]
		seen[a.rec.group] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], a)
	}
	for _, round := range rounds {
		var entries []sqstypes.SendMessageBatchRequestEntry
		byID := map[string]record{}
		for i, a := range round {
			if b.isHeld(a.rec) {
				b.returnLater(a.rec, 0)
				continue
			}
			id := strconv.Itoa(i)
			entry, err := h.entry(id, a)
			if err != nil { // only a message that cannot be encoded: not seen in practice
				h.forwardFailed(b, a.rec, err.Error())
				continue
			}
			entries = append(entries, entry)
			byID[id] = a.rec
		}
		for _, chunk := range sqslimits.Split(entries, sqslimits.SendEntrySize) {
			failed := h.sendBatch(ctx, chunk)
			if len(failed) > 0 {
				var again []sqstypes.SendMessageBatchRequestEntry
				for _, e := range chunk {
					if _, ok := failed[aws.ToString(e.Id)]; ok {
						again = append(again, e)
					}
				}
				failed = h.sendBatch(ctx, again)
			}
			for _, e := range chunk {
				if reason, ok := failed[aws.ToString(e.Id)]; ok {
					h.forwardFailed(b, byID[aws.ToString(e.Id)], reason)
				}
			}
		}
	}
}

// sendBatch sends entries (in order: FIFO keeps the order of a batch within
// a group) and returns the failed ids with their reasons.
func (h *Handler) sendBatch(ctx context.Context, entries []sqstypes.SendMessageBatchRequestEntry) map[string]string {
	if len(entries) == 0 {
		return nil
	}
	out, err := h.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(h.cfg.WorkflowsQueueURL), Entries: entries})
	failed := map[string]string{}
	if err != nil {
		for _, e := range entries {
			failed[aws.ToString(e.Id)] = err.Error()
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
	h.log.Error("forward to the workflows queue failed; the message and its creator's later ones will be decided again",
		"message_id", r.msg.MessageID, "correlation_id", r.msg.CorrelationID, "creator_id", r.msg.CreatorKey(), "error", reason)
	b.returnLater(r, h.cfg.outage().Delay(r.receiveCount()))
}

// entry builds the FIFO entry: original body and attributes, plus the
// limiter's own attributes.
func (h *Handler) entry(id string, a approval) (sqstypes.SendMessageBatchRequestEntry, error) {
	dedup, err := a.rec.msg.WorkflowsDeduplicationID()
	if err != nil {
		return sqstypes.SendMessageBatchRequestEntry{}, err
	}
	attrs := toSendAttributes(a.rec.raw.MessageAttributes)
	maps.Copy(attrs, message.Approval{At: a.decision.At, TokensRemaining: a.decision.Remaining, Version: h.cfg.Version}.SQS())
	return sqstypes.SendMessageBatchRequestEntry{
		Id:                     aws.String(id),
		MessageBody:            aws.String(a.rec.raw.Body),
		MessageGroupId:         aws.String(a.rec.msg.GroupID()),
		MessageDeduplicationId: aws.String(dedup),
		MessageAttributes:      attrs,
	}, nil
}

// changeVisibility sets when each returned record comes back, 10 per call.
// A failure here loses nothing: the record is in batchItemFailures and comes
// back when its current visibility timeout ends.
func (h *Handler) changeVisibility(ctx context.Context, b *batch) {
	since := h.now().Sub(b.start) + receiveAllowance
	for start := 0; start < len(b.retry); start += sqslimits.MaxBatchEntries {
		chunk := b.retry[start:min(start+sqslimits.MaxBatchEntries, len(b.retry))]
		in := &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(h.cfg.IntakeQueueURL)}
		for i, v := range chunk {
			in.Entries = append(in.Entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				ReceiptHandle:     aws.String(v.rec.ReceiptHandle),
				VisibilityTimeout: sqslimits.VisibilitySeconds(v.after, since),
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
				"sqs_message_id", chunk[i].rec.MessageId, "correlation_id", chunk[i].correlation, "error", aws.ToString(f.Message))
		}
	}
}

func toSendAttributes(in map[string]events.SQSMessageAttribute) map[string]sqstypes.MessageAttributeValue {
	out := make(map[string]sqstypes.MessageAttributeValue, len(in)+approvalAttributes)
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

// stringValues are the string values of a record's attributes.
func stringValues(in map[string]events.SQSMessageAttribute) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		if v.StringValue != nil {
			out[k] = *v.StringValue
		}
	}
	return out
}
