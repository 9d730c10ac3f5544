// Package queues describes the SQS queues of the system once, so that the CDK
// stack, the local pipeline and the tests create them with the same names and
// attributes.
package queues

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Base names from the seeds. Production uses them as they are; other
// environments append their name (see Name).
const (
	RateLimiterBase    = "huntaze-rate-limiter-queue.fifo"
	RateLimiterDLQBase = "huntaze-rate-limiter-dlq.fifo"
	WorkflowsBase      = "huntaze-hybrid-workflows.fifo"
	WorkflowsDLQBase   = "huntaze-hybrid-workflows-dlq.fifo"

	// ProdEnvironment keeps the seed names unchanged.
	ProdEnvironment = "prod"
)

// MaxReceiveCount is the redrive backstop of both pairs: the highest SQS
// allows. Our code moves a message to a DLQ itself, with its reason, when the
// fault is the message's own; outages only delay a message (at most 15
// minutes a receive, so 1000 receives is about 10 days), never dead-letter it.
const MaxReceiveCount = 1000

// MaxRetention is the longest SQS keeps a message: every queue keeps
// messages that long so a backlog or a DLQ never loses one to expiry.
const MaxRetention = 14 * 24 * time.Hour

// Queue is one SQS queue.
type Queue struct {
	Name              string
	FIFO              bool
	VisibilityTimeout time.Duration
	RetentionPeriod   time.Duration
	// KMSEncrypted queues use the customer-managed key of the stack; the
	// others use SQS-managed server-side encryption.
	KMSEncrypted bool
	// HighThroughput FIFO queues deduplicate and throttle per message group
	// (one group per creator) instead of per queue.
	HighThroughput bool
}

// Pair is a queue with the dead-letter queue its redrive policy points at.
type Pair struct {
	Main            Queue
	DeadLetter      Queue
	MaxReceiveCount int
}

// Name returns the queue name for an environment: the base name in
// production, "<base>-<env>" elsewhere, keeping ".fifo" last as SQS requires.
func Name(base, env string) string {
	if env == ProdEnvironment || env == "" {
		return base
	}
	if stem, ok := strings.CutSuffix(base, ".fifo"); ok {
		return stem + "-" + env + ".fifo"
	}
	return base + "-" + env
}

// RateLimiter is the FIFO intake queue the API writes to and the rate
// limiter Lambda reads from: one message group per creator, deduplication id
// = messageId. The seeds call it a standard queue, but a standard queue hands
// a creator's messages out in any order to concurrent limiter invocations;
// FIFO keeps the order the API accepted them in (docs/design.md).
//
// VisibilityTimeout is 6× the limiter Lambda's 30 s timeout (AWS's advice for
// SQS event sources). A denied message is received about twice; outages only
// delay it (MaxReceiveCount).
func RateLimiter(env string) Pair {
	return Pair{
		Main: Queue{
			Name:              Name(RateLimiterBase, env),
			FIFO:              true,
			HighThroughput:    true,
			VisibilityTimeout: 180 * time.Second,
			RetentionPeriod:   MaxRetention,
		},
		DeadLetter:      Queue{Name: Name(RateLimiterDLQBase, env), FIFO: true, RetentionPeriod: MaxRetention},
		MaxReceiveCount: MaxReceiveCount,
	}
}

// Workflows is the FIFO queue the rate limiter forwards approved messages to
// and the scraper consumes, one message group per creator.
//
// VisibilityTimeout is above the scraper's longest processing of one message
// (three in-process attempts with their timeouts). The scraper counts real
// failures itself and moves a message to the DLQ explicitly; 429 answers,
// outages and an open breaker only delay it (MaxReceiveCount is a backstop).
func Workflows(env string) Pair {
	return Pair{
		Main: Queue{
			Name:              Name(WorkflowsBase, env),
			FIFO:              true,
			HighThroughput:    true,
			VisibilityTimeout: 600 * time.Second,
			RetentionPeriod:   MaxRetention,
			KMSEncrypted:      true,
		},
		DeadLetter: Queue{
			Name:            Name(WorkflowsDLQBase, env),
			FIFO:            true,
			RetentionPeriod: MaxRetention,
			KMSEncrypted:    true,
		},
		MaxReceiveCount: MaxReceiveCount,
	}
}

// All returns the queue pairs of the system.
func All(env string) []Pair {
	return []Pair{RateLimiter(env), Workflows(env)}
}

// Attributes returns the CreateQueue attributes of q, without encryption
// (the key lives in the stack) and without a redrive policy (see Redrive).
// Deduplication is by explicit MessageDeduplicationId, never by content: two
// distinct messages with the same text must both go through.
func (q Queue) Attributes() map[string]string {
	attrs := map[string]string{
		"MessageRetentionPeriod": strconv.Itoa(int(q.RetentionPeriod.Seconds())),
	}
	if q.VisibilityTimeout > 0 {
		attrs["VisibilityTimeout"] = strconv.Itoa(int(q.VisibilityTimeout.Seconds()))
	}
	if q.FIFO {
		attrs["FifoQueue"] = "true"
		attrs["ContentBasedDeduplication"] = "false"
	}
	if q.HighThroughput {
		attrs["DeduplicationScope"] = "messageGroup"
		attrs["FifoThroughputLimit"] = "perMessageGroupId"
	}
	return attrs
}

// RedrivePolicy returns the RedrivePolicy attribute value for the main queue
// of p given the ARN of its dead-letter queue.
func (p Pair) RedrivePolicy(deadLetterARN string) string {
	b, _ := json.Marshal(map[string]any{ // a map of strings and ints always encodes
		"deadLetterTargetArn": deadLetterARN,
		"maxReceiveCount":     p.MaxReceiveCount,
	})
	return string(b)
}

// URLs are the four queues' URLs, named as every settings struct names them
// (IntakeQueueURL / INTAKE_QUEUE_URL, ...): the intake pair is RateLimiter,
// the workflows pair Workflows.
type URLs struct {
	IntakeQueueURL, IntakeDLQURL, WorkflowsQueueURL, WorkflowsDLQURL string
}
