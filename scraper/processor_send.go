package scraper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

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

// serverError makes a 5xx a breaker failure.
type serverError struct{ status int }

func (e serverError) Error() string { return fmt.Sprintf("site answered %d", e.status) }

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
			return out(Outcome{Fate: Released, Delay: gated.retryAfter, Class: ClassRateGate, Detail: gated.detail, Attempts: attempts - 1, Failures: st.Failures})
		case errors.As(err, &le):
			return out(p.wait(ctx, id, receives, ClassInternal, le.Error(), 0, attempts-1, st.Failures))
		case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
			return out(p.wait(ctx, id, receives, ClassCircuitOpen, "", p.cfg.BreakerOpenFor, attempts-1, st.Failures))
		case res.Outcome == onlyfans.Sent:
			p.settle(ctx, id, c, true)
			return out(Outcome{Fate: Sent, Attempts: attempts, Failures: st.Failures})
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
				return out(Outcome{Fate: Sent, Attempts: attempts, Failures: st.Failures,
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
		return Outcome{Fate: DeadLettered, Class: ClassClient, Detail: fmt.Sprintf("site refused the message with %d", res.Status), Attempts: attempts, Failures: failures}
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
