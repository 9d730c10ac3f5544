package scraper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/internal/logctx"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/sqslimits"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/scraper/settings"
)

// Browser is what the processor needs from the browser sender.
type Browser interface {
	Send(ctx context.Context, creator string, creds onlyfans.Credentials, msg message.Message, beforeClick func(before onlyfans.Mark) error) (onlyfans.Result, *onlyfans.Artifacts, error)
	ReadBack(ctx context.Context, creator string, creds onlyfans.Credentials, msg message.Message, before onlyfans.Mark) (onlyfans.Verdict, error)
	CheckSession(ctx context.Context, creator string, creds onlyfans.Credentials) (bool, error)
	Profile() onlyfans.Profile
}

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

// Action is what the consumer does with the message afterwards.
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
	Action   Action
	Delay    time.Duration
	Class    string
	Detail   string
	Status   string // sent | already_sent | released | failed | dead_lettered
	Attempts int
	Failures int
	// Requests is how many send requests the page issued for the last
	// click (only one ever reaches the site).
	Requests int
}

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
// Restamp is called when an admitted send ended: its approval then counts
// from that moment, the latest the site can have recorded it (a slow site
// records a send up to the response timeout after the gate's decision).
type Gate interface {
	Decide(ctx context.Context, reqs []ratelimit.Request) ([]ratelimit.Decision, error)
	Restamp(ctx context.Context, key, id string) (bool, error)
}

// gatedError stops a send the gate did not admit.
type gatedError struct {
	retryAfter time.Duration
	detail     string
}

func (e gatedError) Error() string { return fmt.Sprintf("send gate: retry in %s", e.retryAfter) }

// Processor decides and performs the send of one message.
type Processor struct {
	cfg     Config
	browser Browser
	gate    Gate
	creds   CredentialStore
	ledger  *Ledger
	marks   MarkStore
	results *Results
	breaker *gobreaker.CircuitBreaker[onlyfans.Result]
	log     *slog.Logger
	metrics *metrics.Emitter
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	// probed is when each paused creator's session was last checked (by
	// this task; bounded by PauseProbeEvery).
	probeMu sync.Mutex
	probed  map[string]time.Time
}

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

// serverError makes a 5xx a breaker failure.
type serverError struct{ status int }

func (e serverError) Error() string { return fmt.Sprintf("site answered %d", e.status) }

// NewProcessor returns a processor. marks keeps the attempt marks of
// clicks left unresolved where a Redis that forgets cannot lose them.
func NewProcessor(cfg Config, b Browser, gate Gate, creds CredentialStore, ledger *Ledger, marks MarkStore, results *Results, log *slog.Logger, m *metrics.Emitter, now func() time.Time) *Processor {
	if cfg.PauseProbeEvery <= 0 {
		cfg.PauseProbeEvery = DefaultPauseProbeEvery
	}
	log = logctx.Logger(log) // lines logged with a message's context name its correlation id
	p := &Processor{cfg: cfg, browser: b, gate: gate, creds: creds, ledger: ledger, marks: marks, results: results, log: log, metrics: m, now: now, sleep: sleepCtx, probed: map[string]time.Time{}}
	p.breaker = gobreaker.NewCircuitBreaker[onlyfans.Result](gobreaker.Settings{
		Name:        "onlyfans",
		MaxRequests: 1,
		Timeout:     cfg.BreakerOpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.BreakerFailures },
		// Only a degraded site (5xx, timeouts, an unreachable, hanging or
		// broken site) or a browser that cannot start trips it. A 429 or a
		// 4xx is the site working as designed.
		IsSuccessful: func(err error) bool {
			var se serverError
			return err == nil || !(errors.As(err, &se) || isOutage(err))
		},
		OnStateChange: func(_ string, from, to gobreaker.State) {
			log.Warn("circuit breaker state changed", "from", from.String(), "to", to.String())
			s := metrics.NewSet()
			s.Put(MetricCircuitState, metrics.Count, float64(to))
			_ = m.Emit(s)
		},
	})
	return p
}

// CircuitState returns the breaker state (closed, half-open, open).
func (p *Processor) CircuitState() gobreaker.State { return p.breaker.State() }

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Process handles one received message and returns what to do with it.
func (p *Processor) Process(ctx context.Context, m sqstypes.Message) Outcome {
	receives, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	start := p.now()
	msg, err := message.Parse([]byte(aws.ToString(m.Body)))
	if err == nil {
		err = msg.Validate()
	}
	if err == nil && len(msg.MediaURLs) > 0 {
		err = errors.New("mediaUrls: " + message.MediaUnsupported)
	}
	attrs := message.StringValues(m.MessageAttributes)
	ids := logIDs{sqsID: aws.ToString(m.MessageId), correlation: message.CorrelationIDOf(attrs)}
	if err != nil {
		out := Outcome{Action: DeadLetter, Class: ClassInvalid, Detail: err.Error(), Status: "dead_lettered"}
		p.report(logctx.With(ctx, "correlation_id", ids.correlation), ids, start, out, nil, 0)
		return out
	}
	ids.messageID, ids.creator, ids.accepted = msg.MessageID, msg.CreatorKey(), msg.Timestamp
	if approved, ok := message.ApprovedAt(attrs); ok {
		ids.unqueued = receives == 1 && approved.Sub(msg.Timestamp) < unqueuedApproval
	}
	if ids.correlation == "" { // queued before the API set correlation ids
		ids.correlation = msg.MessageID
	}
	msg.CorrelationID = ids.correlation
	// Every line about this message names its correlation id (p.log adds
	// the context's attributes).
	ctx = logctx.With(ctx, "correlation_id", ids.correlation)
	out, art, httpStatus := p.process(ctx, msg, max(receives, 1))
	p.report(ctx, ids, start, out, art, httpStatus)
	return out
}

// click is what one processing of a message knows of a click whose
// outcome is unknown, kept in process memory whatever Redis does.
type click struct {
	// mark is the unresolved click's attempt mark (nil: none, or settled).
	mark *onlyfans.Mark
	// stored: the mark store holds exactly mark.
	stored bool
	// stale: the mark store may hold a mark of this message (this
	// processing read or wrote one, or an earlier processing left one).
	stale bool
	// sent: this processing settled the message sent (keepMark makes
	// that durable).
	sent bool
}

// clicked records the mark of a click made now.
func (c *click) clicked(m onlyfans.Mark) { c.mark, c.stored = &m, false }

// known records the mark of an earlier click (from Redis, or stored).
func (c *click) known(m onlyfans.Mark, stored bool) { c.mark, c.stored, c.stale = &m, stored, true }

// process decides one parsed message and then makes its unresolved click,
// if any, durable (keepMark).
func (p *Processor) process(ctx context.Context, msg message.Message, receives int) (Outcome, *onlyfans.Artifacts, int) {
	var c click
	out, art, status := p.decide(ctx, msg, receives, &c)
	p.keepMark(ctx, msg, out, &c)
	return out, art, status
}

// markStoreTimeout bounds a mark store call at the end of a processing
// (it runs even when the processing's context ended: a shutdown).
const markStoreTimeout = 5 * time.Second

// ledgerEpochSkew widens the ledger's epoch for the clocks of the API
// (acceptance time) and of the task (epoch).
const ledgerEpochSkew = time.Minute

// keepMark runs when a processing ends, before the consumer releases or
// deletes the message: a message leaving with its click unresolved has its
// mark written to the mark store (from process memory: the Redis mark may
// be gone already), so that a Redis losing its mark cannot let the next
// receive click blind; a message settled sent has its sent mark written
// there (replacing any stored attempt mark), so that a redelivery (its
// queue delete failed, the task stopped before it) after Redis lost its
// data is not sent again; one settled not sent has any stored mark
// deleted. The hot path (sent at the first click) makes one call: the
// sent mark's PutItem (docs/design.md section 8).
func (p *Processor) keepMark(ctx context.Context, msg message.Message, out Outcome, c *click) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markStoreTimeout)
	defer cancel()
	id := msg.MessageID
	switch {
	case c.sent:
		if err := p.marks.PutSent(ctx, id, msg.CreatorKey()); err != nil {
			p.log.ErrorContext(ctx, "sent mark not written to the mark store: only Redis holds it", "message_id", id, "error", err)
		}
	case c.mark != nil && out.Action != Delete:
		if c.stored {
			return
		}
		if err := p.marks.Put(ctx, id, msg.CreatorKey(), *c.mark); err != nil {
			p.log.ErrorContext(ctx, "attempt mark of an unresolved click not written to the mark store: only Redis holds it", "message_id", id, "error", err)
			return
		}
		p.log.InfoContext(ctx, "attempt mark of an unresolved click kept in the mark store", "message_id", id)
	case c.stale || c.stored:
		if err := p.marks.Delete(ctx, id); err != nil {
			p.log.WarnContext(ctx, "settled attempt mark not deleted from the mark store (it expires)", "message_id", id, "error", err)
		}
	}
}

// decide decides one parsed message: already sent, waiting for something
// not its fault, recovered from an interrupted click, or sent now.
func (p *Processor) decide(ctx context.Context, msg message.Message, receives int, c *click) (Outcome, *onlyfans.Artifacts, int) {
	id, creator := msg.MessageID, msg.CreatorKey()
	st, err := p.ledger.State(ctx, id, creator)
	if err != nil {
		// Without the ledger we cannot promise "never twice": do not send,
		// and do not blame the message.
		return p.wait(ctx, id, receives, ClassInternal, "ledger unavailable: "+err.Error(), 0, 0, 0), nil, 0
	}
	if st.Attempting {
		c.known(st.Mark, false)
	}
	if st.Sent {
		return Outcome{Action: Delete, Status: "already_sent", Failures: st.Failures}, nil, 0
	}
	if p.breaker.State() == gobreaker.StateOpen {
		return p.wait(ctx, id, receives, ClassCircuitOpen, "", p.cfg.BreakerOpenFor, 0, st.Failures), nil, 0
	}
	creds, err := p.creds.Get(ctx, creator)
	if err != nil {
		return p.wait(ctx, id, receives, ClassAuth, err.Error(), 0, 0, st.Failures), nil, 0
	}
	if st.PausedSession != "" {
		if st.PausedSession == creds.Version {
			if ok, why := p.probePaused(ctx, creator, creds); !ok {
				return p.wait(ctx, id, receives, ClassAuth, "creator paused: the site rejected its session; waiting for a new one"+why, 0, 0, st.Failures), nil, 0
			}
			p.log.InfoContext(ctx, "paused creator's session checks good again; resuming", "creator_id", creator, "session_version", creds.Version)
		} else {
			p.log.InfoContext(ctx, "creator's session changed; resuming", "creator_id", creator, "session_version", creds.Version)
		}
		if err := p.ledger.Resume(ctx, creator); err != nil {
			p.log.WarnContext(ctx, "pause not lifted", "creator_id", creator, "error", err)
		}
		p.probeMu.Lock()
		delete(p.probed, creator)
		p.probeMu.Unlock()
	}
	// Redis holds no mark: before a redelivered message (or one accepted
	// before this Redis lost its data) is clicked, the mark store says
	// whether an earlier click is still unresolved.
	uncovered := msg.Timestamp.Before(st.Since.Add(ledgerEpochSkew))
	if !st.Attempting && (receives > 1 || uncovered) {
		stored, found, err := p.marks.Get(ctx, id)
		if err != nil {
			return p.wait(ctx, id, receives, ClassInternal, "attempt marks unavailable: "+err.Error(), 0, 0, st.Failures), nil, 0
		}
		m := stored.Mark
		switch {
		case found && stored.Sent:
			p.log.WarnContext(ctx, "sent mark found in the mark store, not in Redis (Redis lost it): not sending again", "message_id", id)
			if err := p.ledger.MarkSent(ctx, id); err != nil {
				p.log.WarnContext(ctx, "sent mark not put back into Redis", "message_id", id, "error", err)
			}
			return Outcome{Action: Delete, Status: "already_sent", Failures: st.Failures, Detail: "sent mark found in the mark store"}, nil, 0
		case found:
			st.Attempting, st.Mark = true, m
			c.known(m, true)
			p.log.WarnContext(ctx, "attempt mark found in the mark store, not in Redis (Redis lost it): reading the chat back before any click", "message_id", id)
			if err := p.ledger.MarkAttempting(ctx, id, m); err != nil {
				p.log.WarnContext(ctx, "attempt mark not put back into Redis", "message_id", id, "error", err)
			}
		case uncovered && receives > 1:
			// Every task that lets go of an unresolved click writes its
			// mark to the store first; only a task that died between a
			// click and that write (with Redis then losing the mark too)
			// leaves none. Holding or dead-lettering every message of the
			// loss for that would stop creators for good; it is sent.
			p.log.WarnContext(ctx, "Redis lost the ledger after this message was accepted and the mark store holds no mark: sending (a click by a task that died mid-send before the loss cannot be ruled out)", "message_id", id, "ledger_since", st.Since)
		}
	}
	if st.Attempting {
		if out, settled := p.recover(ctx, msg, creds, st, receives, c); settled {
			return out, nil, 0
		}
	}
	return p.send(ctx, msg, creds, st, receives, c)
}

// probePaused re-checks the session of a creator paused with this very
// session, at most every PauseProbeEvery per task: a pause caused by
// something that went away (a block that looked like a rejection) lifts by
// itself. It reports whether the session checks good, and otherwise why
// not (for the log), "" when no probe was due.
func (p *Processor) probePaused(ctx context.Context, creator string, creds onlyfans.Credentials) (bool, string) {
	now := p.now()
	p.probeMu.Lock()
	last, seen := p.probed[creator]
	due := !seen || now.Sub(last) >= p.cfg.PauseProbeEvery
	if due {
		p.probed[creator] = now
	}
	p.probeMu.Unlock()
	if !seen && due {
		// First sight of the pause in this task: the next probe is due a
		// full interval from now (the pause itself was just decided, here
		// or by another task).
		return false, ""
	}
	if !due || p.breaker.State() == gobreaker.StateOpen {
		return false, ""
	}
	valid, err := p.browser.CheckSession(ctx, creator, creds)
	p.noteFailure(err)
	switch {
	case err != nil:
		return false, "; session re-probe said nothing: " + err.Error()
	case !valid:
		return false, "; session re-probe: still rejected"
	}
	return true, ""
}

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
	return Outcome{Action: Release, Delay: p.cfg.outageDelay(hint, n), Class: class, Detail: detail, Status: "released", Attempts: attempts, Failures: failures}
}

// recover settles a click whose outcome is unknown (a 5xx, no answer, a
// crash or a kill after the click): a copy of this text in the chat after
// the messages shown last at that click means it was sent. Shown and no
// copy after them: the mark is cleared and the message is sent again
// (settled false). A chat that cannot be read, or a read-back that cannot
// tell (the anchor gone), leaves the mark in place.
func (p *Processor) recover(ctx context.Context, msg message.Message, creds onlyfans.Credentials, st State, receives int, c *click) (Outcome, bool) {
	id := msg.MessageID
	v, err := p.readBack(ctx, msg, creds, st.Mark)
	if err != nil {
		return p.unreadable(ctx, msg, creds, receives, "checking an interrupted send", err, 0, st.Failures), true
	}
	switch v.Outcome {
	case onlyfans.Sent:
		p.settle(ctx, id, c, true)
		return Outcome{Action: Delete, Status: "already_sent", Failures: st.Failures,
			Detail: fmt.Sprintf("found in the chat after an interrupted attempt (%d identical texts, %d before the click)", v.Identical, st.Mark.Identical)}, true
	case onlyfans.Unknown:
		return p.fail(ctx, id, ClassOutcomeUnknown, "checking an interrupted send: "+v.Why+" (the attempt mark stays)", 0), true
	}
	p.log.InfoContext(ctx, "interrupted attempt did not send; sending again", "message_id", id, "identical_texts", v.Identical)
	p.settle(ctx, id, c, false)
	return Outcome{}, false
}

// settle records a click's outcome: sent (the sent mark) or not sent (the
// attempt mark cleared). Either way no click of it is unresolved any more.
func (p *Processor) settle(ctx context.Context, id string, c *click, sent bool) {
	if sent {
		if err := p.ledger.MarkSent(ctx, id); err != nil {
			// The attempt mark and the read-back still prevent a resend.
			p.log.WarnContext(ctx, "sent mark not written", "message_id", id, "error", err)
		}
	} else if err := p.ledger.ClearAttempting(ctx, id); err != nil {
		p.log.WarnContext(ctx, "attempt mark not cleared", "message_id", id, "error", err)
	}
	c.mark, c.stored, c.sent = nil, false, sent
}

// readBack reads the fan's chat and judges before's click
// (onlyfans.Mark.Judge). It is refused while the breaker is open, and a
// site found down counts towards opening it; a chat that loads says
// nothing about the site's sends, so it does not count as the breaker's
// success.
//
// A verdict other than sent is read again until ReadBackSettle has passed
// since the first read (the chat may show a commit late): only then does
// it stand.
func (p *Processor) readBack(ctx context.Context, msg message.Message, creds onlyfans.Credentials, before onlyfans.Mark) (onlyfans.Verdict, error) {
	settle := p.cfg.ReadBackSettle
	if settle <= 0 {
		settle = DefaultReadBackSettle
	}
	start := time.Now()
	for {
		if p.breaker.State() == gobreaker.StateOpen {
			return onlyfans.Verdict{}, gobreaker.ErrOpenState
		}
		v, err := p.browser.ReadBack(ctx, msg.CreatorKey(), creds, msg, before)
		p.noteFailure(err)
		if err != nil || v.Outcome == onlyfans.Sent {
			return v, err
		}
		left := settle - time.Since(start)
		if left <= 0 {
			return v, nil
		}
		if err := p.sleep(ctx, min(left, readBackStep)); err != nil {
			return onlyfans.Verdict{}, err
		}
	}
}

// noteFailure records an outage seen outside a send with the breaker.
func (p *Processor) noteFailure(err error) {
	if isOutage(err) {
		_, _ = p.breaker.Execute(func() (onlyfans.Result, error) { return onlyfans.Result{}, err })
	}
}

// unreadable decides a message whose chat could not be read back while a
// click's outcome is unknown: the attempt mark stays, so nothing is clicked
// before a later read-back succeeds.
func (p *Processor) unreadable(ctx context.Context, msg message.Message, creds onlyfans.Credentials, receives int, what string, err error, attempts, failures int) Outcome {
	id := msg.MessageID
	var se *onlyfans.StatusError
	switch {
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		return p.wait(ctx, id, receives, ClassCircuitOpen, what+": breaker open", p.cfg.BreakerOpenFor, attempts, failures)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// Stopped (shutdown, the heartbeat lost the message) while the chat
		// settled: not the message's fault.
		return p.wait(ctx, id, receives, ClassInternal, what+": interrupted: "+err.Error(), 0, attempts, failures)
	case errors.Is(err, onlyfans.ErrSiteDown) || errors.Is(err, onlyfans.ErrBrowserDown):
		return p.wait(ctx, id, receives, outageClass(err), what+": "+err.Error(), 0, attempts, failures)
	case errors.As(err, &se) && se.Status == 429:
		return p.wait(ctx, id, receives, ClassRateLimited, what+": "+err.Error(), max(se.RetryAfter, p.cfg.RateLimitDefault), attempts, failures)
	case errors.As(err, &se) && se.LoginPage:
		return p.sessionRejected(ctx, msg, creds, receives, what+": the fan's chat showed the login page", attempts, failures)
	case errors.As(err, &se) && se.Status == 401:
		return p.unauthorised(ctx, msg, creds, receives, what+": the fan's chat answered 401", attempts, failures)
	case errors.As(err, &se) && p.browser.Profile().SessionCheck.Ambiguous(se.Status):
		return p.refused(ctx, msg, creds, receives, se.Status, what+": the fan's chat answered "+strconv.Itoa(se.Status)+" and the outcome of the click is unknown", attempts, failures)
	case errors.As(err, &se):
		return Outcome{Action: DeadLetter, Class: ClassClient, Detail: fmt.Sprintf("%s: the fan's chat answered %d; the outcome of the click is unknown", what, se.Status), Status: "dead_lettered", Attempts: attempts, Failures: failures}
	}
	out := p.fail(ctx, id, ClassBrowser, what+": "+err.Error(), attempts)
	return out
}

// refused decides a refusal that may be the session's or this fan's (the
// profile's SessionCheck statuses): the session is checked first; only a
// session the site says is rejected pauses the creator. A refusal with a
// good session is this fan's: this message goes to the DLQ with its
// reason and the creator's other messages keep flowing.
func (p *Processor) refused(ctx context.Context, msg message.Message, creds onlyfans.Credentials, receives, status int, detail string, attempts, failures int) Outcome {
	if out, decided := p.unlessSessionGood(ctx, msg, creds, receives, detail, attempts, failures); decided {
		return out
	}
	p.log.WarnContext(ctx, "site refused one fan; the session is good: the creator keeps sending", "message_id", msg.MessageID, "creator_id", msg.CreatorKey(), "http_status", status)
	return Outcome{Action: DeadLetter, Class: ClassRecipient, Detail: detail + "; the session check says the session is good: a refusal for this fan (blocked, deleted or not subscribed)", Status: "dead_lettered", Attempts: attempts, Failures: failures}
}

// unauthorised decides a 401 (to a send or a chat page) without the login
// page: an authentication answer, never a refusal about the fan. The
// session check says whose it is: rejected pauses the creator; good (an
// expired request signature or CSRF token) or no answer is an outage: the
// message waits uncounted. A send's attempt mark is kept, so its chat is
// read back before any retry.
func (p *Processor) unauthorised(ctx context.Context, msg message.Message, creds onlyfans.Credentials, receives int, detail string, attempts, failures int) Outcome {
	if out, decided := p.unlessSessionGood(ctx, msg, creds, receives, detail, attempts, failures); decided {
		return out
	}
	p.log.WarnContext(ctx, "site answered 401 with a good session: waiting, uncounted", "message_id", msg.MessageID, "creator_id", msg.CreatorKey())
	return p.wait(ctx, msg.MessageID, receives, ClassAuth, detail+"; the session check says the session is good: an authentication answer, not the message's fault (read back before any retry)", 0, attempts, failures)
}

// unlessSessionGood asks the site whether the creator's session is good,
// unless the breaker is open. It decides the message (decided true) when
// the answer is not "good": an open breaker or a failed check waits
// uncounted (an outage), a rejected session pauses the creator. Only a
// good session leaves the decision to the caller.
func (p *Processor) unlessSessionGood(ctx context.Context, msg message.Message, creds onlyfans.Credentials, receives int, detail string, attempts, failures int) (Outcome, bool) {
	var valid bool
	err := error(gobreaker.ErrOpenState)
	if p.breaker.State() != gobreaker.StateOpen {
		valid, err = p.browser.CheckSession(ctx, msg.CreatorKey(), creds)
		p.noteFailure(err)
	}
	switch {
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		return p.wait(ctx, msg.MessageID, receives, ClassCircuitOpen, detail+"; session not checked: breaker open", p.cfg.BreakerOpenFor, attempts, failures), true
	case err != nil:
		return p.wait(ctx, msg.MessageID, receives, outageClass(err), detail+"; session check failed: "+err.Error(), 0, attempts, failures), true
	case !valid:
		return p.sessionRejected(ctx, msg, creds, receives, detail+"; the session check says the session is rejected", attempts, failures), true
	}
	return Outcome{}, false
}

// sessionRejected pauses the creator: the session, not the message, is at
// fault, so this and every later message of the creator wait (growing
// delays, never counted as failures) until the session's version changes.
// The session_invalid metric (per creator, and in total for the alarm)
// tells an operator to renew it (docs/runbook.md).
func (p *Processor) sessionRejected(ctx context.Context, msg message.Message, creds onlyfans.Credentials, receives int, detail string, attempts, failures int) Outcome {
	creator := msg.CreatorKey()
	if err := p.ledger.Pause(ctx, creator, creds.Version); err != nil {
		p.log.WarnContext(ctx, "pause not recorded", "creator_id", creator, "error", err)
	}
	p.probeMu.Lock()
	p.probed[creator] = p.now()
	p.probeMu.Unlock()
	p.log.ErrorContext(ctx, "session rejected by the site; creator paused until its session changes or checks good again", "creator_id", creator, "message_id", msg.MessageID, "session_version", creds.Version)
	for _, em := range []*metrics.Emitter{p.metrics, p.metrics.With(map[string]string{"CreatorId": creator})} {
		s := metrics.NewSet()
		s.Add(MetricSessionInvalid, metrics.Count, 1)
		_ = em.Emit(s)
	}
	return p.wait(ctx, msg.MessageID, receives, ClassAuth, detail, 0, attempts, failures)
}

// ledgerError stops a click whose attempt mark could not be written.
type ledgerError struct{ err error }

func (e ledgerError) Error() string { return "ledger unavailable: " + e.err.Error() }

// send clicks send. The attempt mark is written right before each click
// (after the gate admitted it) with the count of identical texts then. A
// click's outcome is sent, not sent, or unknown (a 5xx, no answer, a
// dropped connection): an unknown one is read back from the chat before
// anything else, and only a read-back that shows the message missing lets
// it be clicked again (in-process for a 5xx, up to ServerAttempts, or after
// redelivery). A site that is down is an outage: the message waits,
// uncounted, however long it lasts.
func (p *Processor) send(ctx context.Context, msg message.Message, creds onlyfans.Credentials, st State, receives int, c *click) (Outcome, *onlyfans.Artifacts, int) {
	id, creator := msg.MessageID, msg.CreatorKey()
	var before onlyfans.Mark
	admitted := false
	beforeClick := func(mark onlyfans.Mark) error {
		if err := p.admit(ctx, creator, id, receives); err != nil {
			return err
		}
		admitted = true
		if err := p.ledger.MarkAttempting(ctx, id, mark); err != nil {
			return ledgerError{err}
		}
		before = mark
		c.clicked(mark)
		return nil
	}
	var art *onlyfans.Artifacts
	for attempts := 1; ; attempts++ {
		res, err := p.breaker.Execute(func() (onlyfans.Result, error) {
			admitted = false
			r, a, err := p.browser.Send(ctx, creator, creds, msg, beforeClick)
			art = a
			if admitted {
				p.restamp(ctx, creator, id)
			}
			if err == nil && r.Status >= 500 {
				return r, serverError{r.Status}
			}
			return r, err
		})
		if res.Requests > 1 {
			p.log.WarnContext(ctx, "the page issued more than one send request for one click; only the first reached the site", "message_id", id, "send_requests", res.Requests)
		}
		out := func(o Outcome) (Outcome, *onlyfans.Artifacts, int) {
			o.Requests = res.Requests
			if o.Attempts == 0 {
				o.Attempts = attempts
			}
			return o, art, res.Status
		}
		var gated gatedError
		var le ledgerError
		switch {
		case errors.As(err, &gated):
			return out(Outcome{Action: Release, Delay: gated.retryAfter, Class: ClassRateGate, Detail: gated.detail, Status: "released", Attempts: attempts - 1, Failures: st.Failures})
		case errors.As(err, &le):
			return out(p.wait(ctx, id, receives, ClassInternal, le.Error(), 0, attempts-1, st.Failures))
		case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
			return out(p.wait(ctx, id, receives, ClassCircuitOpen, "", p.cfg.BreakerOpenFor, attempts-1, st.Failures))
		case res.Outcome == onlyfans.Sent:
			p.settle(ctx, id, c, true)
			return out(Outcome{Action: Delete, Status: "sent", Attempts: attempts, Failures: st.Failures})
		case res.Outcome == onlyfans.Unknown:
			why := fmt.Sprintf("site answered %d", res.Status)
			if err != nil {
				why = err.Error()
			}
			v, rerr := p.readBack(ctx, msg, creds, before)
			if rerr != nil {
				return out(p.unreadable(ctx, msg, creds, receives, "reading back a send with an unknown outcome ("+why+")", rerr, attempts, st.Failures))
			}
			switch v.Outcome {
			case onlyfans.Sent:
				p.settle(ctx, id, c, true)
				return out(Outcome{Action: Delete, Status: "sent", Attempts: attempts, Failures: st.Failures,
					Detail: fmt.Sprintf("sent: the chat shows it after %s (%d identical texts, %d before the click)", why, v.Identical, before.Identical)})
			case onlyfans.Unknown:
				return out(p.fail(ctx, id, ClassOutcomeUnknown, "reading back a send with an unknown outcome ("+why+"): "+v.Why+" (the attempt mark stays)", attempts))
			}
			p.settle(ctx, id, c, false)
			class := ClassSiteDown
			if res.Status >= 500 {
				class = ClassServer
			}
			if attempts < p.cfg.ServerAttempts {
				if p.sleep(ctx, p.cfg.ServerBackoff*time.Duration(1<<(attempts-1))) != nil {
					return out(p.wait(ctx, id, receives, class, "interrupted during the backoff after "+why, 0, attempts, st.Failures))
				}
				continue
			}
			// The site keeps failing: an outage, not this message's fault.
			return out(p.wait(ctx, id, receives, class, why+" (read back: not sent)", 0, attempts, st.Failures))
		case errors.Is(err, onlyfans.ErrBrowserDown):
			p.log.ErrorContext(ctx, "the browser cannot start: the task's outage, the message waits uncounted", "message_id", id, "error", err)
			return out(p.wait(ctx, id, receives, ClassBrowserDown, err.Error(), 0, attempts, st.Failures))
		case errors.Is(err, onlyfans.ErrSiteDown):
			return out(p.wait(ctx, id, receives, ClassSiteDown, err.Error(), 0, attempts, st.Failures))
		case errors.Is(err, onlyfans.ErrTimeout):
			return out(p.fail(ctx, id, ClassTimeout, err.Error(), attempts))
		case err != nil:
			return out(p.fail(ctx, id, ClassBrowser, err.Error(), attempts))
		}
		return out(p.judge(ctx, msg, creds, receives, res, attempts, st.Failures, c))
	}
}

// judge turns the site's refusal of a click (a 4xx: not sent) into an
// outcome.
func (p *Processor) judge(ctx context.Context, msg message.Message, creds onlyfans.Credentials, receives int, res onlyfans.Result, attempts, failures int, c *click) Outcome {
	id := msg.MessageID
	switch {
	case res.LoginPage:
		// The login page is proof on its own: no session check needed.
		return p.sessionRejected(ctx, msg, creds, receives, "the site showed its login page", attempts, failures)
	case res.Status == 401:
		// The attempt mark stays: the chat is read back before any retry.
		return p.unauthorised(ctx, msg, creds, receives, "site answered 401", attempts, failures)
	}
	p.settle(ctx, id, c, false)
	switch {
	case res.Status == 429:
		delay := res.RetryAfter
		if delay <= 0 {
			delay = p.cfg.RateLimitDefault
		}
		return p.wait(ctx, id, receives, ClassRateLimited, "", delay, attempts, failures)
	case p.browser.Profile().SessionCheck.Ambiguous(res.Status):
		return p.refused(ctx, msg, creds, receives, res.Status, fmt.Sprintf("site answered %d", res.Status), attempts, failures)
	default:
		return Outcome{Action: DeadLetter, Class: ClassClient, Detail: fmt.Sprintf("site refused the message with %d", res.Status), Status: "dead_lettered", Attempts: attempts, Failures: failures}
	}
}

// admit asks the gate for one send right before the click. Every attempt
// (a 5xx retry too) takes a token: the site may count requests. The gate's
// request id is the message id, the same on every attempt.
func (p *Processor) admit(ctx context.Context, creator, id string, receives int) error {
	ds, err := p.gate.Decide(ctx, []ratelimit.Request{{Key: creator, ID: id}})
	if err != nil {
		// Fail closed: without the gate nothing is sent; an outage, not the
		// message's fault.
		return gatedError{retryAfter: p.cfg.outageDelay(0, receives), detail: "gate unavailable: " + err.Error()}
	}
	if !ds[0].Allowed {
		detail := ""
		if ds[0].Fenced {
			detail = "gate fenced: Redis lost its state, holding every send for one window"
		}
		return gatedError{retryAfter: ds[0].RetryAfter, detail: detail}
	}
	return nil
}

// restamp moves the gate's approval of a send that ended to now. A Redis
// error leaves it at its decision (covered by the margin only): logged.
func (p *Processor) restamp(ctx context.Context, creator, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restampTimeout)
	defer cancel()
	if _, err := p.gate.Restamp(ctx, creator, id); err != nil {
		p.log.WarnContext(ctx, "send gate approval not restamped at the send's end", "message_id", id, "error", err)
	}
}

// restampTimeout bounds the gate call after a send.
const restampTimeout = 2 * time.Second

// fail counts a real failure (when countable and the ledger works) and
// decides between a backoff retry and the DLQ.
func (p *Processor) fail(ctx context.Context, id, class, detail string, attempts int) Outcome {
	n, err := p.ledger.AddFailure(ctx, id)
	if err != nil {
		// Cannot count: retry with the first backoff, never dead-letter blind.
		return Outcome{Action: Retry, Delay: p.cfg.Backoff(1), Class: class, Detail: detail + " (failure not counted: " + err.Error() + ")", Status: "failed", Attempts: attempts}
	}
	if n >= p.cfg.MaxFailures {
		return Outcome{Action: DeadLetter, Class: class, Detail: fmt.Sprintf("%s (failure %d of %d)", detail, n, p.cfg.MaxFailures), Status: "dead_lettered", Attempts: attempts, Failures: n}
	}
	return Outcome{Action: Retry, Delay: p.cfg.Backoff(n), Class: class, Detail: detail, Status: "failed", Attempts: attempts, Failures: n}
}

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
