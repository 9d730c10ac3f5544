// Package replay moves the messages waiting in the fallback table to the
// intake queue, each creator's in acceptance order (fallback.Store.Replay),
// each with the correlation id it was accepted with. The scheduled replay
// Lambda (functions/replay), the API's replay route and `make replay` run
// it; it needs the table and the intake queue, nothing of the API's
// authentication or quotas.
package replay

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
)

// Metric names.
const (
	MetricReplayed     = "messages_replayed"
	MetricReplayFailed = "replay_failures"
)

// Sender queues messages on the intake queue in order (enqueue.Sender).
type Sender interface {
	Send(ctx context.Context, msgs []message.Message) []error
}

// Store is the fallback table (fallback.Store).
type Store interface {
	Replay(ctx context.Context, send fallback.Sender, limit int) (fallback.ReplayResult, error)
}

// Replayer is one replay's collaborators.
type Replayer struct {
	Sender  Sender
	Store   Store
	Log     *slog.Logger
	Metrics *metrics.Emitter
}

// Run replays up to limit items per creator (and limit creators).
func (r Replayer) Run(ctx context.Context, limit int) (fallback.ReplayResult, error) {
	m := metrics.NewSet()
	defer func() { _ = r.Metrics.Emit(m) }()
	res, err := r.Store.Replay(ctx, r.send, limit)
	m.Add(MetricReplayed, metrics.Count, float64(res.Replayed))
	m.Add(MetricReplayFailed, metrics.Count, float64(res.Failed))
	return res, err
}

// send queues one item, always to the intake queue: the limiter applies
// the flag, so a replayed message and the creator's later ones share one
// path.
func (r Replayer) send(ctx context.Context, it fallback.Item) error {
	msg, err := message.Parse([]byte(it.Payload))
	if err != nil {
		return fmt.Errorf("stored payload unreadable: %w", err)
	}
	msg.CorrelationID = message.CorrelationIDOf(it.Attributes)
	err = r.Sender.Send(ctx, []message.Message{msg})[0]
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	r.Log.Log(ctx, level, "fallback replay", "message_id", it.MessageID, "correlation_id", msg.CorrelationID, "creator_id", it.CreatorKey,
		"seq", it.Seq, "attempts", it.Attempts+1, "error", errString(err))
	return err
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
