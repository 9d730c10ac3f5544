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
	MetricSuccess         = settings.MetricSuccess
	MetricFailure         = settings.MetricFailure
	MetricDuration        = settings.MetricDuration
	MetricCircuitState    = settings.MetricCircuitState
	MetricSessionInvalid  = settings.MetricSessionInvalid
	MetricDeliveryLatency = settings.MetricDeliveryLatency
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

func (p *Processor) report(ctx context.Context, ids logIDs, start time.Time, out Outcome, art *onlyfans.Artifacts, httpStatus int) {
	now := p.now()
	dur := now.Sub(start)
	var latency time.Duration
	if out.Status == "sent" && !ids.accepted.IsZero() {
		latency = now.Sub(ids.accepted)
	}
	level := slog.LevelInfo
	switch out.Action {
	case Retry, DeadLetter:
		level = slog.LevelError
	case Release:
		level = slog.LevelWarn
	}
	p.log.Log(ctx, level, "message processed", "message_id", ids.messageID, "sqs_message_id", ids.sqsID, "creator_id", ids.creator,
		"status", out.Status, "success", out.Status == "sent" || out.Status == "already_sent",
		"error_class", out.Class, "error_detail", out.Detail, "http_status", httpStatus, "attempts", out.Attempts, "send_requests", out.Requests,
		"failures", out.Failures, "retry_in_ms", out.Delay.Milliseconds(), "duration_ms", dur.Milliseconds(),
		"delivery_latency_ms", latency.Milliseconds(), "backlog", latencyClass(ids.unqueued))

	set := metrics.NewSet()
	failed := out.Status != "sent" && out.Class != ClassNone
	if out.Status == "sent" {
		set.Add(MetricSuccess, metrics.Count, 1)
		set.Put(MetricDuration, metrics.Milliseconds, float64(dur.Milliseconds()))
	} else if failed {
		set.Add(MetricFailure, metrics.Count, 1)
	}
	set.Put(MetricCircuitState, metrics.Count, float64(p.breaker.State()))
	_ = p.metrics.Emit(set)
	if failed { // the same failure by class, for the dashboard's breakdown
		byClass := metrics.NewSet()
		byClass.Add(MetricFailure, metrics.Count, 1)
		_ = p.metrics.With(map[string]string{"ErrorClass": out.Class}).Emit(byClass)
	}
	if out.Status == "sent" && !ids.accepted.IsZero() {
		// Accepted → sent: creator is a log field (Logs Insights), not a
		// dimension (one metric per creator would cost per creator); the
		// Backlog dimension keeps the waits of creators who sent more than
		// the limit apart from the pipeline's own delay.
		lat := metrics.NewSet()
		lat.Put(MetricDeliveryLatency, metrics.Milliseconds, float64(latency.Milliseconds()))
		_ = p.metrics.With(map[string]string{"Backlog": latencyClass(ids.unqueued)}).Emit(lat)
	}

	if ids.messageID == "" || p.results == nil {
		return
	}
	rec := Record{MessageID: ids.messageID, CreatorID: ids.creator, CorrelationID: ids.correlation, Status: out.Status,
		ErrorClass: out.Class, Detail: out.Detail, HTTPStatus: httpStatus, Attempts: out.Attempts, SendRequests: out.Requests, Failures: out.Failures,
		StartedAt: start, DurationMS: dur.Milliseconds()}
	if err := p.results.Write(ctx, rec, art); err != nil {
		p.log.WarnContext(ctx, "result not written to S3", "message_id", ids.messageID, "error", err)
	}
}
