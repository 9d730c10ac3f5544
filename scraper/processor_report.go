package scraper

import (
	"context"
	"log/slog"
	"time"

	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/scraper/settings"
)

// Metric names: scraper/settings defines them, beside the settings, so
// that the stack's alarms and dashboard read them without the browser.
const (
	MetricSuccess          = settings.MetricSuccess
	MetricFailure          = settings.MetricFailure
	MetricDuration         = settings.MetricDuration
	MetricCircuitState     = settings.MetricCircuitState
	MetricSessionInvalid   = settings.MetricSessionInvalid
	MetricDeliveryLatency  = settings.MetricDeliveryLatency
	MetricDeadLetterFailed = settings.MetricDeadLetterFailed
)

type logIDs struct {
	sqsID, messageID, creator, correlation string
	// accepted is when the API took the message (its timestamp);
	// unqueued says its creator had no backlog on the way: the limiter
	// approved it within a window of its acceptance and this is its first
	// receive here (no gate denial, no retry).
	accepted time.Time
	unqueued bool
}

// unqueuedApproval is the longest limiter wait of a message whose creator
// had no backlog (one OnlyFans window).
const unqueuedApproval = time.Minute

// latencyClass names the Backlog dimension of MetricDeliveryLatency.
func latencyClass(unqueued bool) string {
	if unqueued {
		return "none"
	}
	return "queued"
}

// processed is one message's processing, as report tells it.
type processed struct {
	ids        logIDs
	out        Outcome
	art        *onlyfans.Artifacts
	httpStatus int
	start      time.Time
	duration   time.Duration
	// latency is accepted → sent, for a message sent now whose acceptance
	// time is known (timed); 0 otherwise.
	latency time.Duration
	timed   bool
}

// report tells one message's processing to each of its readers: the log,
// the EMF metrics (outcome, failure class, delivery latency) and the
// results in S3. What each says follows from the outcome's Fate.
func (p *Processor) report(ctx context.Context, ids logIDs, start time.Time, out Outcome, art *onlyfans.Artifacts, httpStatus int) {
	now := p.now()
	r := processed{ids: ids, out: out, art: art, httpStatus: httpStatus, start: start, duration: now.Sub(start)}
	if out.Fate == Sent && !ids.accepted.IsZero() {
		r.latency, r.timed = now.Sub(ids.accepted), true
	}
	p.logProcessed(ctx, r)
	p.emitOutcome(r)
	p.emitFailureClass(r)
	p.emitDeliveryLatency(r)
	p.writeResult(ctx, r)
}

// logLevel is the level of a fate's "message processed" line: an error
// for a counted failure or the DLQ, a warning for a release.
func logLevel(f Fate) slog.Level {
	switch f.Action() {
	case Retry, DeadLetter:
		return slog.LevelError
	case Release:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// logProcessed writes the one "message processed" line of a message.
func (p *Processor) logProcessed(ctx context.Context, r processed) {
	out := r.out
	p.log.Log(ctx, logLevel(out.Fate), "message processed", "message_id", r.ids.messageID, "sqs_message_id", r.ids.sqsID, "creator_id", r.ids.creator,
		"status", out.Status(), "success", out.Fate.Delivered(),
		"error_class", out.Class, "error_detail", out.Detail, "http_status", r.httpStatus, "attempts", out.Attempts, "send_requests", out.Requests,
		"failures", out.Failures, "retry_in_ms", out.Delay.Milliseconds(), "duration_ms", r.duration.Milliseconds(),
		"delivery_latency_ms", r.latency.Milliseconds(), "backlog", latencyClass(r.ids.unqueued))
}

// failedFate says a fate counts in the failure metric: every fate but a
// delivered one (each such outcome of the processor names its class).
func failedFate(f Fate) bool { return !f.Delivered() }

// emitOutcome emits the outcome metrics: a success with its duration for
// a message sent now, a failure for one not delivered (none for one sent
// earlier), and the breaker's state.
func (p *Processor) emitOutcome(r processed) {
	set := metrics.NewSet()
	switch {
	case r.out.Fate == Sent:
		set.Add(MetricSuccess, metrics.Count, 1)
		set.Put(MetricDuration, metrics.Milliseconds, float64(r.duration.Milliseconds()))
	case failedFate(r.out.Fate):
		set.Add(MetricFailure, metrics.Count, 1)
	}
	set.Put(MetricCircuitState, metrics.Count, float64(p.breaker.State()))
	_ = p.metrics.Emit(set)
}

// emitFailureClass emits a failure again by its class, for the
// dashboard's breakdown.
func (p *Processor) emitFailureClass(r processed) {
	if !failedFate(r.out.Fate) {
		return
	}
	byClass := metrics.NewSet()
	byClass.Add(MetricFailure, metrics.Count, 1)
	_ = p.metrics.With(map[string]string{"ErrorClass": r.out.Class}).Emit(byClass)
}

// emitDeliveryLatency emits accepted → sent. The creator is a log field
// (Logs Insights), not a dimension (one metric per creator would cost per
// creator); the Backlog dimension keeps the waits of creators who sent
// more than the limit apart from the pipeline's own delay.
func (p *Processor) emitDeliveryLatency(r processed) {
	if !r.timed {
		return
	}
	lat := metrics.NewSet()
	lat.Put(MetricDeliveryLatency, metrics.Milliseconds, float64(r.latency.Milliseconds()))
	_ = p.metrics.With(map[string]string{"Backlog": latencyClass(r.ids.unqueued)}).Emit(lat)
}

// writeResult hands the message's result record (and a failure's
// captures) to the results writer for S3; a message without an id (its
// payload unreadable) has none.
func (p *Processor) writeResult(ctx context.Context, r processed) {
	if r.ids.messageID == "" || p.results == nil {
		return
	}
	out := r.out
	rec := Record{MessageID: r.ids.messageID, CreatorID: r.ids.creator, CorrelationID: r.ids.correlation, Status: out.Status(),
		ErrorClass: out.Class, Detail: out.Detail, HTTPStatus: r.httpStatus, Attempts: out.Attempts, SendRequests: out.Requests, Failures: out.Failures,
		StartedAt: r.start, DurationMS: r.duration.Milliseconds()}
	if err := p.results.Write(ctx, rec, r.art); err != nil {
		p.log.WarnContext(ctx, "result not written to S3", "message_id", r.ids.messageID, "error", err)
	}
}
