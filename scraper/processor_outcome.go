package scraper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// Error classes (logs, metrics, results).
const (
	ClassNone        = ""
	ClassRateLimited = "rate_limited"      // 429: back to the queue, not a failure
	ClassServer      = "server_error"      // 5xx after in-process retries: an outage, waits uncounted
	ClassSiteDown    = "site_unavailable"  // refused, DNS, TLS, reset, hanging: an outage, waits uncounted
	ClassClient      = "client_error"      // other 4xx: dead-lettered with the reason
	ClassRecipient   = "recipient_refused" // a refusal about this fan, the session checked good: dead-lettered
	ClassAuth        = "auth"              // a rejected session (checked) or no credentials: the session, not the message: waits
	ClassTimeout     = "timeout"
	ClassBrowser     = "browser"
	ClassCircuitOpen = "circuit_open" // not attempted
	ClassRateGate    = "rate_gate"    // the send gate said wait: not attempted
	ClassInvalid     = "invalid_payload"
	ClassInternal    = "internal" // ledger (Redis) unavailable: waits

	// ClassChatUnusable: this fan's chat cannot be used (5xx, no composer,
	// no history, send disabled before typing) while the probe chat can:
	// counted, dead-lettered after MaxFailures. With the probe chat broken
	// too it is an outage (ClassSiteDown), uncounted.
	ClassChatUnusable = "chat_unusable"

	// ClassBrowserDown: the browser cannot (re)start: the task's outage,
	// waits uncounted.
	ClassBrowserDown = "browser_unavailable"

	// ClassOutcomeUnknown: a read-back of an unknown click could not tell
	// (the messages shown last at the click are gone, or identical texts
	// line up with them in ways that disagree). Never "not sent": the mark
	// stays, the failure counts, and after MaxFailures the message goes to
	// the DLQ with the reason for an operator to look at the chat.
	ClassOutcomeUnknown = "outcome_unknown"
)

// Fate is what happened to one message: the one fact an Outcome states.
// What the consumer does with the message (Action), the result record's
// and the log's status (String) and the success and failure metrics
// (processor_report.go) all follow from it. The zero Fate is none of them;
// it keeps the message (Release), so that a missed case loses nothing.
type Fate int

const (
	// Sent by this processing.
	Sent Fate = iota + 1
	// AlreadySent by an earlier one: the ledger, the mark store or the
	// chat says so.
	AlreadySent
	// Released: held back by something that is not the message's fault
	// (an outage, a 429, the breaker, the gate, the session, another
	// consumer's claim): back to the queue after Delay, uncounted.
	Released
	// Failed: a counted failure, back to the queue after Delay
	// (exponential backoff).
	Failed
	// DeadLettered: to the FIFO DLQ with Class and Detail.
	DeadLettered
)

// String is the fate as the result records and the logs name it.
func (f Fate) String() string {
	switch f {
	case Sent:
		return "sent"
	case AlreadySent:
		return "already_sent"
	case Released:
		return "released"
	case Failed:
		return "failed"
	case DeadLettered:
		return "dead_lettered"
	}
	return "unknown"
}

// Action is what the consumer does with a message of this fate.
func (f Fate) Action() Action {
	switch f {
	case Sent, AlreadySent:
		return Delete
	case Failed:
		return Retry
	case DeadLettered:
		return DeadLetter
	}
	return Release
}

// Delivered says the message is at the site (sent now or earlier).
func (f Fate) Delivered() bool { return f == Sent || f == AlreadySent }

// Action is what the consumer does with the message afterwards; it follows
// from the message's Fate.
type Action int

const (
	// Delete: sent (or already sent); remove from the queue.
	Delete Action = iota
	// Release: back to the queue after Delay, not counted as a failure (not
	// the message's fault: an outage, a 429, the breaker, the gate).
	Release
	// Retry: a counted failure, back after Delay (exponential backoff).
	Retry
	// DeadLetter: move to the FIFO DLQ with Reason, then delete.
	DeadLetter
)

// Outcome of one message.
type Outcome struct {
	Fate     Fate
	Delay    time.Duration
	Class    string
	Detail   string
	Attempts int
	Failures int
	// Requests is how many send requests the page issued for the last
	// click (only one ever reaches the site).
	Requests int
}

// Action is what the consumer does with the message (from its Fate).
func (o Outcome) Action() Action { return o.Fate.Action() }

// Status is the fate as the result record names it: sent, already_sent,
// released, failed or dead_lettered.
func (o Outcome) Status() string { return o.Fate.String() }

// isOutage reports whether err is an outage of the site or of the task's
// browser (never a message's fault).
func isOutage(err error) bool {
	return errors.Is(err, onlyfans.ErrTimeout) || errors.Is(err, onlyfans.ErrSiteDown) || errors.Is(err, onlyfans.ErrBrowserDown)
}

// outageClass is the class of an outage error.
func outageClass(err error) string {
	if errors.Is(err, onlyfans.ErrBrowserDown) {
		return ClassBrowserDown
	}
	return ClassSiteDown
}

// wait releases a message held back by something that is not its fault.
// The exponent of its delay counts this message's waits in the ledger, not
// its receives: waiting its turn at the gate or behind its group's head is
// no outage. Without the ledger (Redis down), receives it is.
func (p *Processor) wait(ctx context.Context, id string, receives int, class, detail string, hint time.Duration, attempts, failures int) Outcome {
	n, err := p.ledger.CountWait(ctx, id)
	if err != nil {
		n = receives
	}
	return Outcome{Fate: Released, Delay: p.cfg.outageDelay(hint, n), Class: class, Detail: detail, Attempts: attempts, Failures: failures}
}

// fail counts a real failure (when countable and the ledger works) and
// decides between a backoff retry and the DLQ.
func (p *Processor) fail(ctx context.Context, id, class, detail string, attempts int) Outcome {
	n, err := p.ledger.AddFailure(ctx, id)
	if err != nil {
		// Cannot count: retry with the first backoff, never dead-letter blind.
		return Outcome{Fate: Failed, Delay: p.cfg.Backoff(1), Class: class, Detail: detail + " (failure not counted: " + err.Error() + ")", Attempts: attempts}
	}
	if n >= p.cfg.MaxFailures {
		return Outcome{Fate: DeadLettered, Class: class, Detail: fmt.Sprintf("%s (failure %d of %d)", detail, n, p.cfg.MaxFailures), Attempts: attempts, Failures: n}
	}
	return Outcome{Fate: Failed, Delay: p.cfg.Backoff(n), Class: class, Detail: detail, Attempts: attempts, Failures: n}
}
