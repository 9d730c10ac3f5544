package scraper

import (
	"math"
	"time"

	"github.com/huntaze/message-pipeline/internal/sqslimits"
)

// Config of the processor.
type Config struct {
	// MaxFailures real failures move a message to the DLQ.
	MaxFailures int
	// BackoffBase × BackoffFactor^(failures-1), capped at 12 h, is the
	// visibility after a failure.
	BackoffBase   time.Duration
	BackoffFactor float64
	// ServerRetries is how many attempts a 5xx gets in-process.
	ServerAttempts int
	ServerBackoff  time.Duration
	// RateLimitDefault is the delay after a 429 without Retry-After.
	RateLimitDefault time.Duration
	// Breaker settings: opens after BreakerFailures consecutive 5xx or
	// timeouts, stays open BreakerOpenFor, then lets one probe through.
	BreakerFailures uint32
	BreakerOpenFor  time.Duration
	// OutageBackoff is the first delay of a release that is not the
	// message's fault; it doubles with every receive, capped at 15 minutes
	// (sqslimits.OutageDelay), so an outage of any length costs few receives
	// and never dead-letters a message.
	OutageBackoff time.Duration
	// OutageBackoffMax caps that delay (at most, and by default, 15 minutes).
	OutageBackoffMax time.Duration
	// ReadBackSettle is how long a read-back that finds no new copy of the
	// text keeps reading the chat again before it concludes "not sent": a
	// site's chat list may show a commit late (an asynchronous write path,
	// a cache). 0 means DefaultReadBackSettle.
	ReadBackSettle time.Duration
	// PauseProbeEvery is how often a creator paused for a rejected session
	// is re-probed with the session check (default 5 minutes): the pause
	// lifts by itself when the check passes again, not only when the
	// session's version changes.
	PauseProbeEvery time.Duration
}

// DefaultReadBackSettle is the safe reading of how late a chat may show a
// committed send (unknown for the real site: generous, docs/scraper.md).
const DefaultReadBackSettle = 10 * time.Second

// readBackStep is the pause between two reads of a settling read-back.
const readBackStep = time.Second

// DefaultPauseProbeEvery is PauseProbeEvery's default.
const DefaultPauseProbeEvery = 5 * time.Minute

// outageDelay is how long a message waits out a fault that is not its own
// for the n-th time, at least hint (a Retry-After, the breaker's open time).
func (c Config) outageDelay(hint time.Duration, n int) time.Duration {
	return max(hint, sqslimits.Backoff{Base: c.OutageBackoff, Max: c.OutageBackoffMax}.Delay(n))
}

// MaxVisibility is SQS's limit for a visibility timeout.
const MaxVisibility = 12 * time.Hour

// Backoff returns the visibility after the n-th failure.
func (c Config) Backoff(n int) time.Duration {
	d := float64(c.BackoffBase) * math.Pow(c.BackoffFactor, float64(max(n-1, 0)))
	if d > float64(MaxVisibility) || math.IsInf(d, 0) || math.IsNaN(d) {
		return MaxVisibility
	}
	return time.Duration(d)
}

// Gate admits one send of a creator right before the click, so that no
// rolling window at the site holds more than the limit whatever the queueing
// delays upstream (ratelimit.Limiter over the actual send times).
//
