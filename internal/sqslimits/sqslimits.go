// Package sqslimits keeps calls inside what SQS accepts: batches of at most
// 10 entries and 1 MiB, visibility timeouts of at most 12 h counted from the
// receive, and the growing delay a message waits out during an outage.
package sqslimits

import (
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

const (
	// MaxBatchEntries is the most entries one batch call takes.
	MaxBatchEntries = 10
	// MaxBatchBytes is the most a SendMessageBatch may carry in total
	// (bodies and attributes).
	MaxBatchBytes = 1 << 20
	// MaxVisibility is the longest a message may stay invisible after one
	// receive, counted from that receive.
	MaxVisibility = 12 * time.Hour
	// MaxOutageDelay caps the delay of a message waiting out an outage.
	MaxOutageDelay = 15 * time.Minute
)

// EntrySize is what SQS counts of a message: its body and, per attribute,
// the name, the data type and the value.
func EntrySize(body string, attrs map[string]sqstypes.MessageAttributeValue) int {
	n := len(body)
	for k, v := range attrs {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
		for _, s := range v.StringListValues {
			n += len(s)
		}
		for _, b := range v.BinaryListValues {
			n += len(b)
		}
	}
	return n
}

// SendEntrySize is EntrySize of a batch entry.
func SendEntrySize(e sqstypes.SendMessageBatchRequestEntry) int {
	return EntrySize(aws.ToString(e.MessageBody), e.MessageAttributes)
}

// Split cuts items, in order, into consecutive chunks of at most
// MaxBatchEntries items and MaxBatchBytes bytes (an item larger than that
// goes alone, for SQS to refuse on its own).
func Split[T any](items []T, size func(T) int) [][]T {
	var out [][]T
	start, bytes := 0, 0
	for i, it := range items {
		s := size(it)
		if i > start && (i-start == MaxBatchEntries || bytes+s > MaxBatchBytes) {
			out = append(out, items[start:i])
			start, bytes = i, 0
		}
		bytes += s
	}
	if start < len(items) {
		out = append(out, items[start:])
	}
	return out
}

// VisibilitySeconds is the visibility timeout to set for a message that
// should come back after d, given how long ago it was received: rounded up
// to whole seconds (never back before d), at least 1 s, and never past
// MaxVisibility after the receive (SQS refuses a longer total).
func VisibilitySeconds(d, sinceReceive time.Duration) int32 {
	s := math.Ceil(d.Seconds())
	limit := math.Floor((MaxVisibility - max(sinceReceive, 0)).Seconds())
	return int32(max(min(s, limit), 1))
}

// Backoff is the delay of a message waiting out a fault that is not its own
// (Redis, SQS or the site down, a 429, an open breaker).
type Backoff struct {
	// Base is the first delay; it doubles with every try. Its default is
	// the caller's setting (OUTAGE_BACKOFF), which its Validate requires
	// positive; a zero Base is no delay.
	Base time.Duration
	// Max caps the delay (MaxOutageDelay in AWS; tests scale it down).
	Max time.Duration
}

// Delay is the wait before the n-th try (n ≥ 1): Base doubled per earlier
// try, capped at Max. It grows so that a long outage costs few receives, and
// never dead-letters: maxReceiveCount (1000) at 15 minutes a receive is about
// 10 days.
func (b Backoff) Delay(n int) time.Duration {
	base, limit := b.Base, b.Max // Base comes validated (positive) from its settings: OUTAGE_BACKOFF
	if limit <= 0 || limit > MaxOutageDelay {
		limit = MaxOutageDelay
	}
	d := float64(base) * math.Pow(2, float64(max(n-1, 0)))
	if d > float64(limit) || math.IsInf(d, 0) || math.IsNaN(d) {
		return limit
	}
	return time.Duration(d)
}

// OutageDelay is Backoff{Base: base, Max: MaxOutageDelay}.Delay(n).
func OutageDelay(base time.Duration, n int) time.Duration {
	return Backoff{Base: base, Max: MaxOutageDelay}.Delay(n)
}
