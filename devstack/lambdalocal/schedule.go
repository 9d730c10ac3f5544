package lambdalocal

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// ScheduledEvent is the event an EventBridge schedule rule delivers to its
// target (detail-type "Scheduled Event", source aws.events).
func ScheduledEvent(ruleARN string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "0", "id": uuid.NewString(), "detail-type": "Scheduled Event", "source": "aws.events",
		"account": "000000000000", "time": at.UTC().Format(time.RFC3339), "region": "us-east-1",
		"resources": []string{ruleARN}, "detail": map[string]any{},
	})
	return b
}

// Schedule invokes a function every Every with the rule's scheduled event,
// one invocation at a time (a rule's target may overlap in AWS; the
// replay is idempotent either way), until ctx ends.
type Schedule struct {
	RuleARN string
	Every   time.Duration
	Fn      Invoker
	Log     *slog.Logger
}

// Run blocks until ctx ends.
func (s Schedule) Run(ctx context.Context) {
	tick := time.NewTicker(s.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case at := <-tick.C:
			if _, err := s.Fn.Invoke(ctx, ScheduledEvent(s.RuleARN, at)); err != nil && ctx.Err() == nil {
				s.Log.Warn("scheduled invocation failed", "rule", s.RuleARN, "error", err)
			}
		}
	}
}
