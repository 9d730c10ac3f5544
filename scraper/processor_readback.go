package scraper

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// recover settles a click whose outcome is unknown (a 5xx, no answer, a
// crash or a kill after the click): a copy of this text in the chat after
// the messages shown last at that click means it was sent. Shown and no
// copy after them: the mark is cleared and the message is sent again
// (settled false), once the click's request can no longer land
// (LateCommitHorizon; until then the message waits with its mark). A chat that cannot be read, or a read-back that cannot
// tell (the anchor gone), leaves the mark in place. A click the site
// answered sent (answeredSent) is not read back: only its settling is
// done again.
func (p *Processor) recover(ctx context.Context, msg message.Message, creds onlyfans.Credentials, st State, receives int, c *click) (Outcome, bool) {
	id := msg.MessageID
	answered, err := p.answeredSent(ctx, id, &st, c)
	if err != nil {
		return p.wait(ctx, id, receives, ClassInternal, "attempt marks unavailable: "+err.Error(), 0, 0, st.Failures), true
	}
	if answered {
		if err := p.settleSent(ctx, msg, st.Mark, c); err != nil {
			return p.wait(ctx, id, receives, ClassInternal, err.Error(), 0, 0, st.Failures), true
		}
		return Outcome{Fate: AlreadySent, Failures: st.Failures, Detail: "sent: the site answered its click; its fan's last-sent record written now"}, true
	}
	v, from, err := p.readBack(ctx, msg, creds, st.Mark)
	if err != nil {
		return p.unreadable(ctx, &sending{msg: msg, creds: creds, st: st, receives: receives, c: c}, "checking an interrupted send", err, 0), true
	}
	switch v = p.emptyChat(ctx, id, receives, st.Mark, v); v.Outcome {
	case onlyfans.Sent:
		if err := p.settleSent(ctx, msg, st.Mark, c); err != nil {
			return p.wait(ctx, id, receives, ClassInternal, err.Error(), 0, 0, st.Failures), true
		}
		return Outcome{Fate: AlreadySent, Failures: st.Failures,
			Detail: fmt.Sprintf("found in the chat after an interrupted attempt (%d identical texts, %d before the click)", v.Identical, st.Mark.Identical)}, true
	case onlyfans.Unknown:
		return p.undecided(ctx, id, receives, "checking an interrupted send", st.Mark, v, 0, st.Failures), true
	}
	if left := p.unruledOutFor(st.Mark, from); left > 0 {
		return p.mayStillLand(ctx, id, receives, "checking an interrupted send", left, 0, st.Failures), true
	}
	p.log.InfoContext(ctx, "interrupted attempt did not send; sending again", "message_id", id, "identical_texts", v.Identical)
	p.settle(ctx, id, c, false)
	return Outcome{}, false
}

// readBack reads the fan's chat and judges before's click
// (onlyfans.Mark.Judge). It is refused while the breaker is open, and a
// site found down counts towards opening it; a chat that loads says
// nothing about the site's sends, so it does not count as the breaker's
// success.
//
// A verdict other than sent is read again until ReadBackSettle has passed
// since the first read (the chat may show a commit late): only then does
// it stand. from is when the first read began (unruledOutFor).
func (p *Processor) readBack(ctx context.Context, msg message.Message, creds onlyfans.Credentials, before onlyfans.Mark) (v onlyfans.Verdict, from time.Time, err error) {
	start, from := time.Now(), p.now()
	for {
		if p.breaker.State() == gobreaker.StateOpen {
			return onlyfans.Verdict{}, time.Time{}, gobreaker.ErrOpenState
		}
		v, err := p.browser.ReadBack(ctx, msg.CreatorKey(), creds, msg, before)
		p.noteFailure(err)
		if err != nil || v.Outcome == onlyfans.Sent {
			return v, from, err
		}
		left := p.cfg.ReadBackSettle - time.Since(start)
		if left <= 0 {
			return v, from, nil
		}
		if err := p.sleep(ctx, min(left, readBackStep)); err != nil {
			return onlyfans.Verdict{}, time.Time{}, err
		}
	}
}

// unruledOutFor is how much longer the click of mark may land unseen by
// a read-back whose reads began at from (0: that read-back settles it). A
// read shows the chat as it was when it began, its page rendered then
// however late its answer came (a slow origin, a far edge), and the chat
// may show a commit up to ReadBackSettle after it; a read-back reads for
// that settle from its first read. So only a read-back that began once the
// request could no longer land rules it out; for one that began before,
// the chat is read back again once the request can no longer land, and at
// least readBackStep from now. Judged by the time of its answer, a read
// begun before the horizon and answered after it took a request landing
// meanwhile for "not sent"; judged by its last read's start, a read-back
// whose settle straddled the horizon missed a commit landing just before
// it and shown late (review 22 AB A, B): both clicked the message again.
func (p *Processor) unruledOutFor(mark onlyfans.Mark, from time.Time) time.Duration {
	if mark.ClickedAt == 0 {
		return 0
	}
	end := p.landsBy(mark)
	if !from.Before(end) {
		return 0
	}
	return max(end.Sub(p.now()), readBackStep)
}

// emptyChat decides an Empty verdict (a chat showing no message, as it
// showed none of the creator's at the click: Mark.judgeFromStart): not
// sent, or a page rendering an empty history for a while (the site's
// outage). Seen so by consecutive receives for EmptyChatPatience
// (Ledger.BehindSince, at most ChatFaultPatience: Config.Validate), it is
// taken for not sent; before, it waits as a read path behind does
// (Behind: undecided's uncounted wait; review 22 W C and X C: read "not
// sent" at once, a page rendering an empty history after a committed 502,
// with or without its start marker, sent the first message to a fan
// twice). Any other verdict is returned as it is.
func (p *Processor) emptyChat(ctx context.Context, id string, receives int, mark onlyfans.Mark, v onlyfans.Verdict) onlyfans.Verdict {
	if !v.Empty || v.Outcome != onlyfans.Unknown {
		return v
	}
	first, err := p.ledger.BehindSince(ctx, id, mark.ClickedAt, receives, p.now())
	if err == nil && p.now().Sub(first) >= p.cfg.EmptyChatPatience {
		p.log.InfoContext(ctx, "the chat still shows no message, past the patience: taken as not sent", "message_id", id)
		v.Outcome, v.Why = onlyfans.NotSent, ""
		return v
	}
	v.Behind = true
	return v
}

// undecided decides a read-back that cannot tell (the attempt mark
// stays): this message's failure, unless the chat shows an earlier state
// than at the click (the site's read path lagging: review 22 G) for less
// than ChatFaultPatience, which is an outage's uncounted wait. Past the
// patience an earlier state is taken for what it also looks like, the
// creator having deleted the anchor (review 22 H: else the creator's
// messages waited for the backstop, about 10 days). The patience counts
// only a run of consecutive receives that each saw the earlier state
// (Ledger.BehindSince): measured from the click, an outage used it up and
// a short lag after it counted at once (review 22 I); measured from a
// first sighting forgotten only after a read-back that met an outage, a
// 429 refusal or an open breaker still used it up (review 22 J).
func (p *Processor) undecided(ctx context.Context, id string, receives int, what string, mark onlyfans.Mark, v onlyfans.Verdict, attempts, failures int) Outcome {
	if v.Behind {
		first, err := p.ledger.BehindSince(ctx, id, mark.ClickedAt, receives, p.now())
		if err != nil {
			return p.wait(ctx, id, receives, ClassInternal, what+": "+v.Why+"; recording when the chat was first seen so: "+err.Error(), 0, attempts, failures)
		}
		patience := p.cfg.ChatFaultPatience
		if v.Empty {
			// emptyChat takes it for not sent past its own patience.
			patience = p.cfg.EmptyChatPatience
		}
		if seen := p.now().Sub(first); seen < patience {
			var hint time.Duration
			if v.Empty {
				// Nothing but time tells an empty chat from a page rendering
				// an empty history: look again once the patience is over,
				// as an unknown click waits out its horizon, instead of at
				// the outage backoff's steps; and not before the click's
				// request can no longer land either: a look before it
				// settles nothing (unruledOutFor), it only costs a read.
				hint = max(patience-seen, p.mayLandFor(mark))
			}
			return p.wait(ctx, id, receives, ClassSiteDown, fmt.Sprintf("%s: %s, seen so for %s of the %s before it counts (the attempt mark stays)",
				what, v.Why, seen.Round(time.Millisecond), patience), hint, attempts, failures)
		}
	}
	return p.fail(ctx, id, ClassOutcomeUnknown, what+": "+v.Why+" (the attempt mark stays)", attempts)
}

// noteFailure records an outage seen outside a send with the breaker.
func (p *Processor) noteFailure(err error) {
	if isOutage(err) {
		_, _ = p.breaker.Execute(func() (onlyfans.Result, error) { return onlyfans.Result{}, err })
	}
}

// unreadable decides a message whose chat could not be read back while a
// click's outcome is unknown: the attempt mark stays, so nothing is clicked
// before a later read-back succeeds. A chat page that cannot be used
// (ErrChatUnusable: a 4xx or 5xx page, no composer, no history) is judged
// as before a click (chatFault: the probe chat tells the site's outage
// from this fan's chat alone, which counts after the patience), so a fan
// whose chat broke after an unknown click (a deleted account) reaches the
// DLQ with its reason, not the backstop.
func (p *Processor) unreadable(ctx context.Context, s *sending, what string, err error, attempts int) Outcome {
	msg, creds, receives, failures := s.msg, s.creds, s.receives, s.st.Failures
	id := msg.MessageID
	var se *onlyfans.StatusError
	switch {
	case errors.Is(err, onlyfans.ErrChatUnusable):
		// chatFault counts attempts as a send does (one for a click that
		// was not made).
		return p.chatFault(ctx, s, fmt.Errorf("%s: %w", what, err), attempts+1)
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
		return p.chatRefused(ctx, s, se.Status, what+": the fan's chat answered "+strconv.Itoa(se.Status)+" and the outcome of the click is unknown", attempts+1)
	case errors.As(err, &se):
		return Outcome{Fate: DeadLettered, Class: ClassClient, Detail: fmt.Sprintf("%s: the fan's chat answered %d; the outcome of the click is unknown", what, se.Status), Attempts: attempts, Failures: failures}
	}
	out := p.fail(ctx, id, ClassBrowser, what+": "+err.Error(), attempts)
	return out
}

// refused decides a refusal that may be the session's or this fan's (the
// profile's SessionCheck statuses): the session is checked first; only a
// session the site says is rejected pauses the creator. A refusal with a
