// Package queuedepth reads how many messages each queue of the pipeline
// holds and publishes it as a metric: the API's status route and the
// scheduled replay both call it, so the metric has a point at least every
// 5 minutes (seed 000 R5.5).
package queuedepth

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/queues"
)

// MetricQueueDepth is a queue's messages (visible + in flight + delayed),
// dimension Queue: intake, intake-dlq, workflows, workflows-dlq.
const MetricQueueDepth = "queue_depth"

// StatsAPI reads queue attributes.
type StatsAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Status is one queue's depth.
type Status struct {
	Name      string `json:"name"`
	Visible   int    `json:"visible"`
	InFlight  int    `json:"inFlight"`
	Delayed   int    `json:"delayed"`
	Reachable bool   `json:"reachable"`
	// DeadLetter marks a dead-letter queue (not part of the response).
	DeadLetter bool `json:"-"`
}

// Total is every message the queue holds.
func (s Status) Total() int { return s.Visible + s.InFlight + s.Delayed }

// Reader reads the depths.
type Reader struct {
	Stats StatsAPI
	Log   *slog.Logger
	// Metrics receives MetricQueueDepth (nil: not published).
	Metrics *metrics.Emitter
}

// Read returns the depth of every queue with a URL, in the order intake,
// intake DLQ, workflows, workflows DLQ, and publishes each reachable one's.
func (r Reader) Read(ctx context.Context, q queues.URLs) []Status {
	var out []Status
	for _, qu := range []struct {
		name, url string
		dlq       bool
	}{{"intake", q.IntakeQueueURL, false}, {"intake-dlq", q.IntakeDLQURL, true}, {"workflows", q.WorkflowsQueueURL, false}, {"workflows-dlq", q.WorkflowsDLQURL, true}} {
		if qu.url == "" {
			continue
		}
		qs := r.one(ctx, qu.url)
		qs.DeadLetter = qu.dlq
		out = append(out, qs)
		if qs.Reachable && r.Metrics != nil {
			m := metrics.NewSet()
			m.Put(MetricQueueDepth, metrics.Count, float64(qs.Total()))
			_ = r.Metrics.With(map[string]string{"Queue": qu.name}).Emit(m)
		}
	}
	return out
}

func (r Reader) one(ctx context.Context, url string) Status {
	qs := Status{Name: url[strings.LastIndexByte(url, '/')+1:]}
	out, err := r.Stats.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		r.Log.WarnContext(ctx, "queue attributes unreadable", "queue", qs.Name, "error", err)
		return qs
	}
	qs.Reachable = true
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], &qs.Visible)
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)], &qs.InFlight)
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)], &qs.Delayed)
	return qs
}
