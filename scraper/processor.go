package scraper

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/internal/logctx"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// Browser is what the processor needs from the browser sender.
type Browser interface {
	Send(ctx context.Context, creator string, creds onlyfans.Credentials, msg message.Message, beforeClick func(before onlyfans.Mark) error) (onlyfans.Result, *onlyfans.Artifacts, error)
	ReadBack(ctx context.Context, creator string, creds onlyfans.Credentials, msg message.Message, before onlyfans.Mark) (onlyfans.Verdict, error)
	CheckSession(ctx context.Context, creator string, creds onlyfans.Credentials) (bool, error)
	ProbeChat(ctx context.Context, creator string, creds onlyfans.Credentials, fan string) error
	CheckChat(ctx context.Context, creator string, creds onlyfans.Credentials, fan string) error
	Profile() onlyfans.Profile
}

// Processor decides and performs the send of one message.
type Processor struct {
	cfg     Config
	browser Browser
	gate    Gate
	creds   CredentialStore
	ledger  *Ledger
	marks   MarkStore
	results *Results
	breaker *gobreaker.CircuitBreaker[onlyfans.Result]
	log     *slog.Logger
	metrics *metrics.Emitter
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	// probed is when each paused creator's session was last checked (by
	// this task; bounded by PauseProbeEvery).
	probeMu sync.Mutex
	probed  map[string]time.Time
	// proofs: the answered-sent proofs whose settling waits (review 22 O).
	proofs heldProofs
}

// NewProcessor returns a processor, or the error of a configuration that
// is not complete (Config.Validate). marks keeps the attempt marks of
// clicks left unresolved where a Redis that forgets cannot lose them.
func NewProcessor(cfg Config, b Browser, gate Gate, creds CredentialStore, ledger *Ledger, marks MarkStore, results *Results, log *slog.Logger, m *metrics.Emitter, now func() time.Time) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log = logctx.Logger(log) // lines logged with a message's context name its correlation id
	p := &Processor{cfg: cfg, browser: b, gate: gate, creds: creds, ledger: ledger, marks: marks, results: results, log: log, metrics: m, now: now, sleep: sleepCtx, probed: map[string]time.Time{}}
	p.breaker = gobreaker.NewCircuitBreaker[onlyfans.Result](gobreaker.Settings{
		Name:        "onlyfans",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
		// Only a degraded site (5xx, timeouts, an unreachable, hanging or
		// broken site) or a browser that cannot start trips it. A 429 or a
		// 4xx is the site working as designed.
		IsSuccessful: func(err error) bool {
			var se serverError
			return err == nil || !(errors.As(err, &se) || isOutage(err))
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			log.Warn("circuit breaker state changed", "from", from.String(), "to", to.String())
			s := metrics.NewSet()
			s.Put(MetricCircuitState, metrics.Count, float64(to))
			_ = m.Emit(s)
		},
	})
	return p, nil
}

// CircuitState returns the breaker state (closed, half-open, open).
func (p *Processor) CircuitState() gobreaker.State { return p.breaker.State() }

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Process handles one received message and returns what to do with it.
func (p *Processor) Process(ctx context.Context, m sqstypes.Message) Outcome {
	receives, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	start := p.now()
	msg, err := message.Parse([]byte(aws.ToString(m.Body)))
	if err == nil {
		err = msg.Validate()
	}
	if err == nil && len(msg.MediaURLs) > 0 {
		err = errors.New("mediaUrls: " + message.MediaUnsupported)
	}
	attrs := message.StringValues(m.MessageAttributes)
	ids := logIDs{sqsID: aws.ToString(m.MessageId), correlation: message.CorrelationIDOf(attrs)}
	if err != nil {
		out := Outcome{Fate: DeadLettered, Class: ClassInvalid, Detail: err.Error()}
		p.report(logctx.With(ctx, "correlation_id", ids.correlation), ids, start, out, nil, 0)
		return out
	}
	ids.messageID, ids.creator, ids.accepted = msg.MessageID, msg.CreatorKey(), msg.Timestamp
	if approved, ok := message.ApprovedAt(attrs); ok {
		ids.unqueued = receives == 1 && approved.Sub(msg.Timestamp) < unqueuedApproval
	}
	if ids.correlation == "" { // queued before the API set correlation ids
		ids.correlation = msg.MessageID
	}
	msg.CorrelationID = ids.correlation
	// Every line about this message names its correlation id (p.log adds
	// the context's attributes).
	ctx = logctx.With(ctx, "correlation_id", ids.correlation)
	out, art, httpStatus := p.process(ctx, msg, max(receives, 1))
	p.report(ctx, ids, start, out, art, httpStatus)
	return out
}

// process decides one parsed message and then makes its unresolved click,
// if any, durable (keepMark).
func (p *Processor) process(ctx context.Context, msg message.Message, receives int) (Outcome, *onlyfans.Artifacts, int) {
	var c click
	out, art, status := p.decide(ctx, msg, receives, &c)
	out = p.beforeBackstop(ctx, msg, receives, out)
	p.keepMark(ctx, msg, out, &c)
	return out, art, status
}
