package scraper

import (
	"errors"
	"fmt"
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
	// a cache).
	ReadBackSettle time.Duration
	// LateCommitHorizon is how long after the last moment it may leave
	// the browser (Mark.LeaveBy: the click's window) a send request may
	// still land at the site when it got no answer (an origin keeps
	// working after its client left). Before it passed, a read-back that
	// finds no copy is no "not sent": the message waits with its attempt
	// mark, and the request stays charged to the gate (Gate.Hold; the
	// gate's MaxHold and ChargeAhead cover it and the click's window).
	LateCommitHorizon time.Duration
	// ChatFaultPatience is how long one fan's chat must stay unusable while
	// the probe chat works (every receive since the first such sight)
	// before a receive counts it as this message's failure: until then it
	// waits as an outage. One broken backend behind a balancer can fail
	// the fan's chat, pass the probe and fail the fan's again on one
	// receive (review 22 F); it does not do so on every receive for long.
	ChatFaultPatience time.Duration
	// EmptyChatPatience is how long a chat that showed none of the
	// creator's messages at an unknown click, and still shows no message
	// at all, must be seen so (consecutive receives) before the click is
	// taken for not sent (emptyChat): until then it may be a page
	// rendering an empty history after a commit, an outage's wait.
	EmptyChatPatience time.Duration
	// AnsweredProofPatience is how long a processing that holds the site's
	// 2xx for a send it could not settle (Redis refusing writes) keeps
	// trying to write that proof to the mark store before it releases the
	// message with the proof in this task's memory only (keepAnswered).
	AnsweredProofPatience time.Duration
	// PauseProbeEvery is how often a creator paused for a rejected session
	// is re-probed with the session check: the pause
	// lifts by itself when the check passes again, not only when the
	// session's version changes.
	PauseProbeEvery time.Duration
	// MaxReceiveCount is the queue's redrive backstop: a message still
	// waiting backstopMargin receives before it goes to the DLQ from here,
	// with its reason (processor_backstop.go).
	MaxReceiveCount int
}

// readBackStep is the pause between two reads of a settling read-back.
const readBackStep = time.Second

// Validate reports a configuration the processor cannot run with. Its
// defaults live in scraper/settings (setup.Processor builds it from them):
// a field left zero is an error here, not a default.
func (c Config) Validate() error {
	var errs []error
	if c.MaxFailures < 1 || c.ServerAttempts < 1 || c.BreakerFailures < 1 || c.BackoffFactor < 1 {
		errs = append(errs, fmt.Errorf("processor: max failures (%d), server attempts (%d) and breaker failures (%d) must be ≥ 1 and the backoff factor (%g) ≥ 1",
			c.MaxFailures, c.ServerAttempts, c.BreakerFailures, c.BackoffFactor))
	}
	positive := []struct {
		name string
		d    time.Duration
	}{{"breaker open time", c.BreakerOpenFor}, {"outage backoff", c.OutageBackoff},
		{"outage backoff max", c.OutageBackoffMax}, {"read-back settle", c.ReadBackSettle}, {"pause probe interval", c.PauseProbeEvery},
		{"late commit horizon", c.LateCommitHorizon}, {"chat fault patience", c.ChatFaultPatience}, {"empty chat patience", c.EmptyChatPatience},
		{"answered proof patience", c.AnsweredProofPatience}}
	for _, f := range positive {
		if f.d <= 0 {
			errs = append(errs, fmt.Errorf("processor: %s must be positive, got %s", f.name, f.d))
		}
	}
	if c.EmptyChatPatience > c.ChatFaultPatience {
		// An Empty chat waits as a chat behind the click, which counts
		// as a failure past ChatFaultPatience (undecided).
		errs = append(errs, fmt.Errorf("processor: the empty chat patience (%s) must not exceed the chat fault patience (%s)", c.EmptyChatPatience, c.ChatFaultPatience))
	}
	if c.MaxReceiveCount <= backstopMargin {
		errs = append(errs, fmt.Errorf("processor: the queue's max receive count must exceed %d, got %d", backstopMargin, c.MaxReceiveCount))
	}
	// 0 is meaningful for these: a failure or a 5xx retried at once; a
	// 429 without Retry-After waiting the outage backoff only.
	if c.BackoffBase < 0 || c.ServerBackoff < 0 || c.RateLimitDefault < 0 {
		errs = append(errs, fmt.Errorf("processor: backoff base (%s), server backoff (%s) and rate limit default (%s) must not be negative", c.BackoffBase, c.ServerBackoff, c.RateLimitDefault))
	}
	return errors.Join(errs...)
}

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
