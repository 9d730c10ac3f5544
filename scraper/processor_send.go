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
// Hold is called instead when the send got no answer: its approval counts
// from later, the last moment the request may land (LateCommitHorizon).
type Gate interface {
	Decide(ctx context.Context, reqs []ratelimit.Request) ([]ratelimit.Decision, error)
	Restamp(ctx context.Context, key, approval string) (bool, error)
	Hold(ctx context.Context, key, approval string, later time.Duration) (bool, error)
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
	s := &sending{msg: msg, creds: creds, st: st, receives: receives, c: c}
	for attempts := 1; ; attempts++ {
		res, err := p.attempt(ctx, s)
		if res.Requests > 1 {
			p.log.WarnContext(ctx, "the page issued more than one send request for one click; only the first reached the site", "message_id", msg.MessageID, "send_requests", res.Requests)
		}
		o, again := p.afterClick(ctx, s, res, err, attempts)
		if again {
			continue
		}
		o.Requests = res.Requests
		if o.Attempts == 0 {
			o.Attempts = attempts
		}
		return o, s.art, res.Status
	}
}

// sending is what the attempts of one send share.
type sending struct {
	msg      message.Message
	creds    onlyfans.Credentials
	st       State
	receives int
	c        *click
	// before is the attempt mark of the last click; admitted says the gate
	// admitted the current attempt, approval names the approval it spent
	// (its own, not another task's of the same message: review 22 J); art
	// is its captures.
	before   onlyfans.Mark
	admitted bool
	approval string
	art      *onlyfans.Artifacts
}

// left narrows the last click's mark to the latest moment its send
// request may have left (onlyfans.Result.LeftBy), known once the click's
// window closed: the horizon counts from there, and the mark this
// processing keeps for a redelivery says so (the one written before the
// click holds the bound known then, Mark.LeaveBy).
func (s *sending) left(at int64) {
	if at <= 0 || s.before.ClickedAt == 0 || (s.before.LeaveBy != 0 && at >= s.before.LeaveBy) {
		return
	}
	s.before.LeaveBy = at
	s.c.left(s.before)
}

// beforeClick runs right before a click: the gate admits it, then its
// attempt mark is written.
func (p *Processor) beforeClick(ctx context.Context, s *sending, mark onlyfans.Mark) error {
	id := s.msg.MessageID
	if err := p.staleClickPage(ctx, s, mark); err != nil {
		return err
	}
	approval, err := p.admit(ctx, s.msg.CreatorKey(), id, s.receives)
	if err != nil {
		return err
	}
	s.admitted, s.approval = true, approval
	mark.ClickedAt = p.now().UnixMilli()
	if err := p.ledger.MarkAttempting(ctx, id, mark); err != nil {
		return ledgerError{err}
	}
	s.before = mark
	s.c.clicked(mark)
	return nil
}

// attempt makes one send through the breaker; a 5xx is its failure, and
// an admitted send's gate approval is restamped at its end, or held until
// the request can no longer land when it got no answer or a 5xx.
func (p *Processor) attempt(ctx context.Context, s *sending) (onlyfans.Result, error) {
	creator := s.msg.CreatorKey()
	return p.breaker.Execute(func() (onlyfans.Result, error) {
		s.admitted, s.approval = false, ""
		r, a, err := p.browser.Send(ctx, creator, s.creds, s.msg, func(mark onlyfans.Mark) error { return p.beforeClick(ctx, s, mark) })
		s.art = a
		if s.admitted {
			s.left(r.LeftBy)
		}
		switch {
		case s.admitted && p.unanswered(r):
			p.hold(ctx, creator, s.msg.MessageID, s.approval, min(p.mayLandFor(s.before), p.cfg.LateCommitHorizon))
		case s.admitted:
			p.restamp(ctx, creator, s.msg.MessageID, s.approval)
		}
		if err == nil && r.Status >= 500 {
			return r, serverError{r.Status}
		}
		return r, err
	})
}

// afterClick decides an attempt's result, or asks for another attempt
// (again true: a 5xx read back not sent, within ServerAttempts).
func (p *Processor) afterClick(ctx context.Context, s *sending, res onlyfans.Result, err error, attempts int) (o Outcome, again bool) {
	id, receives, failures := s.msg.MessageID, s.receives, s.st.Failures
	if s.admitted && !errors.Is(err, onlyfans.ErrChatUnusable) {
		// The fan's chat worked up to a send request: a later fault starts
		// its patience anew. Not before the click: a send button only
		// this chat covers is found at the click (review 22 H).
		p.forgetBrokenChat(ctx, s)
	}
	if errors.Is(err, onlyfans.ErrMisrouted) {
		// Refused before it left (the page was another fan's chat): not
		// sent, and its mark, read on that chat, is no anchor for this
		// fan's (review 22 W B). The wait below is the site's outage.
		p.settle(ctx, id, s.c, false)
	}
	var gated gatedError
	var le ledgerError
	switch {
	case errors.As(err, &gated):
		return Outcome{Fate: Released, Delay: gated.retryAfter, Class: ClassRateGate, Detail: gated.detail, Attempts: attempts - 1, Failures: failures}, false
	case errors.As(err, &le):
		return p.wait(ctx, id, receives, ClassInternal, le.Error(), 0, attempts-1, failures), false
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		return p.wait(ctx, id, receives, ClassCircuitOpen, "", p.cfg.BreakerOpenFor, attempts-1, failures), false
	case res.Outcome == onlyfans.Sent:
		if err := p.settleSent(ctx, s.msg, s.before, s.c); err != nil {
			return p.wait(ctx, id, receives, ClassInternal, err.Error(), 0, attempts, failures), false
		}
		return Outcome{Fate: Sent, Attempts: attempts, Failures: failures}, false
	case res.Outcome == onlyfans.Unknown:
		return p.unknownClick(ctx, s, res, err, attempts)
	case errors.Is(err, onlyfans.ErrBrowserDown):
		p.log.ErrorContext(ctx, "the browser cannot start: the task's outage, the message waits uncounted", "message_id", id, "error", err)
		return p.wait(ctx, id, receives, ClassBrowserDown, err.Error(), 0, attempts, failures), false
	case errors.Is(err, onlyfans.ErrChatUnusable):
		return p.chatFault(ctx, s, err, attempts), false
	case errors.Is(err, onlyfans.ErrSiteDown):
		return p.wait(ctx, id, receives, ClassSiteDown, err.Error(), 0, attempts, failures), false
	case errors.Is(err, onlyfans.ErrTimeout):
		return p.fail(ctx, id, ClassTimeout, err.Error(), attempts), false
	case err != nil:
		return p.fail(ctx, id, ClassBrowser, err.Error(), attempts), false
	}
	if res.ChatPage && !res.LoginPage && p.browser.Profile().SessionCheck.Ambiguous(res.Status) {
		return p.chatRefused(ctx, s, res.Status, fmt.Sprintf("the fan's chat page answered %d", res.Status), attempts), false
	}
	return p.judge(ctx, s.msg, s.creds, receives, res, attempts, failures, s.c), false
}

// unknownClick reads back a click whose outcome is unknown (a 5xx, no
// answer): sent, or not sent and clicked again after the server backoff
// (again true) while ServerAttempts last, then an outage.
func (p *Processor) unknownClick(ctx context.Context, s *sending, res onlyfans.Result, err error, attempts int) (o Outcome, again bool) {
	id, receives, failures := s.msg.MessageID, s.receives, s.st.Failures
	why := fmt.Sprintf("site answered %d", res.Status)
	if err != nil {
		why = err.Error()
	}
	v, from, rerr := p.readBack(ctx, s.msg, s.creds, s.before)
	if rerr != nil {
		return p.unreadable(ctx, s, "reading back a send with an unknown outcome ("+why+")", rerr, attempts), false
	}
	switch v = p.emptyChat(ctx, id, receives, s.before, v); v.Outcome {
	case onlyfans.Sent:
		if err := p.settleSent(ctx, s.msg, s.before, s.c); err != nil {
			return p.wait(ctx, id, receives, ClassInternal, err.Error(), 0, attempts, failures), false
		}
		return Outcome{Fate: Sent, Attempts: attempts, Failures: failures,
			Detail: fmt.Sprintf("sent: the chat shows it after %s (%d identical texts, %d before the click)", why, v.Identical, s.before.Identical)}, false
	case onlyfans.Unknown:
		return p.undecided(ctx, id, receives, "reading back a send with an unknown outcome ("+why+")", s.before, v, attempts, failures), false
	}
	if left := p.unruledOutFor(s.before, from); p.unanswered(res) && left > 0 {
		return p.mayStillLand(ctx, id, receives, why, left, attempts, failures), false
	}
	p.settle(ctx, id, s.c, false)
	class := ClassSiteDown
	if res.Status >= 500 {
		class = ClassServer
	}
	if attempts < p.cfg.ServerAttempts {
		if p.sleep(ctx, p.cfg.ServerBackoff*time.Duration(1<<(attempts-1))) != nil {
			return p.wait(ctx, id, receives, class, "interrupted during the backoff after "+why, 0, attempts, failures), false
		}
		return Outcome{}, true
	}
	// The site keeps failing: an outage, not this message's fault.
	return p.wait(ctx, id, receives, class, why+" (read back: not sent)", 0, attempts, failures), false
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
	case res.Foreign && !res.ChatPage:
		// A front refused the send in the API's place (a WAF rule, a route
		// gone): about every send, not this fan (review 22 L: every head
		// message was dead-lettered). An outage: it waits, uncounted.
		return p.wait(ctx, id, receives, ClassSiteDown, fmt.Sprintf("site answered %d, not as its send API (a front's refusal of every send)", res.Status), 0, attempts, failures)
	case p.browser.Profile().SessionCheck.Ambiguous(res.Status):
		return p.refused(ctx, msg, creds, receives, res.Status, fmt.Sprintf("site answered %d", res.Status), attempts, failures)
	default:
		return Outcome{Fate: DeadLettered, Class: ClassClient, Detail: fmt.Sprintf("site refused the message with %d", res.Status), Attempts: attempts, Failures: failures}
	}
}

// admit asks the gate for one send right before the click. Every attempt
// (a 5xx retry too) takes a token: the site may count requests. The gate's
// request id is the message id, the same on every attempt; it returns the
// approval the attempt spent (Decision.Approval).
func (p *Processor) admit(ctx context.Context, creator, id string, receives int) (string, error) {
	ds, err := p.gate.Decide(ctx, []ratelimit.Request{{Key: creator, ID: id}})
	if err != nil {
		// Fail closed: without the gate nothing is sent; an outage, not the
		// message's fault.
		return "", gatedError{retryAfter: p.cfg.outageDelay(0, receives), detail: "gate unavailable: " + err.Error()}
	}
	if !ds[0].Allowed {
		detail := ""
		if ds[0].Fenced {
			detail = "gate fenced: Redis lost its state, holding every send for one window and the late-commit horizon"
		}
		return "", gatedError{retryAfter: ds[0].RetryAfter, detail: detail}
	}
	return ds[0].Approval, nil
}

// restamp moves the gate's approval of a send that ended to now. A Redis
// error leaves it at its decision (covered by the margin only): logged.
func (p *Processor) restamp(ctx context.Context, creator, id, approval string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restampTimeout)
	defer cancel()
	if _, err := p.gate.Restamp(ctx, creator, approval); err != nil {
		p.log.WarnContext(ctx, "send gate approval not restamped at the send's end", "message_id", id, "error", err)
	}
}

// hold keeps the gate's approval of a send that got no answer until later
// from now, when it can no longer land. A Redis error leaves it at its
// decision: logged.
func (p *Processor) hold(ctx context.Context, creator, id, approval string, later time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restampTimeout)
	defer cancel()
	if _, err := p.gate.Hold(ctx, creator, approval, later); err != nil {
		p.log.WarnContext(ctx, "send gate approval of an unanswered send not held until it can no longer land", "message_id", id, "error", err)
	}
}

// unanswered says a click's request may still be at work at the site's
// origin: every answer that is neither a 2xx (sent) nor a 4xx (refused).
// No answer at all (no answer in time, a dropped connection, a crash), any
// 5xx (a gateway's 502-504, a CDN's 520-527, an API gateway's or an app
// server's own timeout answering 500: which front answered, and whether
// its origin goes on to commit, a page cannot tell; review 22 F: a 500
// whose origin committed 6 s later was sent twice), and any 3xx (a front
// redirecting a POST it already passed on; review 22 G: a 302 whose origin
// committed 6 s later was sent twice), and a 2xx that is not the send
// API's (a front's HTML interstitial, SendRequest.AnswerType; review 22
// L): each is held to the late-commit horizon (issue 22: only a read-back
// turns unknown into sent or not).
func (p *Processor) unanswered(res onlyfans.Result) bool {
	return res.Outcome == onlyfans.Unknown
}

// mayLandFor is how much longer a request of the click of mark may land at
// the site (LateCommitHorizon after the last moment it may leave,
// landsBy); 0 for a mark without its click time (written before it was
// recorded).
func (p *Processor) mayLandFor(mark onlyfans.Mark) time.Duration {
	if mark.ClickedAt == 0 {
		return 0
	}
	return max(p.landsBy(mark).Sub(p.now()), 0)
}

// landsBy is the last moment a request of the click of mark may land:
// LateCommitHorizon after the last moment it may leave the browser
// (Mark.LeaveBy; ClickedAt for a mark written before it was recorded).
// Counted from the click, a request the page sent 7 s after it was read
// "not sent" while it could still land, and clicked again (review 22 AD
// B).
func (p *Processor) landsBy(mark onlyfans.Mark) time.Time {
	return time.UnixMilli(max(mark.ClickedAt, mark.LeaveBy)).Add(p.cfg.LateCommitHorizon)
}

// mayStillLand releases a message whose click's request may still land:
// the chat does not show it yet, which says nothing before the horizon.
// The attempt mark stays, and the message is read back again once the
// request can no longer land (at least left from now, growing with every
// wait); its creator's later messages wait behind it (its FIFO group).
func (p *Processor) mayStillLand(ctx context.Context, id string, receives int, why string, left time.Duration, attempts, failures int) Outcome {
	p.log.WarnContext(ctx, "the chat does not show a send that may still land; reading back again later (the attempt mark stays)", "message_id", id, "may_land_for", left.String())
	return p.wait(ctx, id, receives, ClassSiteDown, fmt.Sprintf("%s; not in the chat yet, and the request may still land for %s: read back again then (the attempt mark stays)", why, left.Round(time.Second)), left, attempts, failures)
}

// restampTimeout bounds the gate call after a send.
const restampTimeout = 2 * time.Second
