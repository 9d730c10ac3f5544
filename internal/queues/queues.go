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
	RateLimiterBase    = "huntaze-rate-limiter-queue"
	RateLimiterDLQBase = "huntaze-rate-limiter-dlq"
	WorkflowsBase      = "huntaze-hybrid-workflows.fifo"
	WorkflowsDLQBase   = "huntaze-hybrid-workflows-dlq.fifo"

	// ProdEnvironment keeps the seed names unchanged.
	ProdEnvironment = "prod"
)

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

// RateLimiter is the standard queue the API writes to and the rate limiter
// Lambda reads from.
//
// VisibilityTimeout is 6× the limiter Lambda's 30 s timeout (AWS's advice for
// SQS event sources). MaxReceiveCount is high because a denied message is
// received once per denial: the limiter gives each denied message its future
// slot, so a message is normally denied once, but a long backlog for one
// creator can defer a message several times (each deferral is at most 12 h).
// 100 receives covers far more than the 14-day retention of deferrals while
// still moving a message that fails for another reason to the DLQ.
func RateLimiter(env string) Pair {
	return Pair{
		Main: Queue{
			Name:              Name(RateLimiterBase, env),
			VisibilityTimeout: 180 * time.Second,
			RetentionPeriod:   MaxRetention,
		},
		DeadLetter:      Queue{Name: Name(RateLimiterDLQBase, env), RetentionPeriod: MaxRetention},
		MaxReceiveCount: 100,
	}
}

// Workflows is the FIFO queue the rate limiter forwards approved messages to
// and the scraper consumes, one message group per creator.
//
// VisibilityTimeout is above the scraper's longest processing of one message
// (three in-process attempts with their timeouts). MaxReceiveCount is only a
// backstop for consumers that die: the scraper counts real failures itself and
// moves a message to the DLQ explicitly, so 429 answers (which only return the
// message) never push it there.
func Workflows(env string) Pair {
	return Pair{
		Main: Queue{
			Name:              Name(WorkflowsBase, env),
			FIFO:              true,
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
		MaxReceiveCount: 100,
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
