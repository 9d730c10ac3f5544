package scraper

import (
	"context"
	"errors"
	"fmt"

	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

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

// good session is this fan's: this message goes to the DLQ with its
// reason and the creator's other messages keep flowing.
func (p *Processor) refused(ctx context.Context, msg message.Message, creds onlyfans.Credentials, receives, status int, detail string, attempts, failures int) Outcome {
	if out, decided := p.unlessSessionGood(ctx, msg, creds, receives, detail, attempts, failures); decided {
		return out
	}
	p.log.WarnContext(ctx, "site refused one fan; the session is good: the creator keeps sending", "message_id", msg.MessageID, "creator_id", msg.CreatorKey(), "http_status", status)
	return Outcome{Fate: DeadLettered, Class: ClassRecipient, Detail: detail + "; the session check says the session is good: a refusal for this fan (blocked, deleted or not subscribed)", Attempts: attempts, Failures: failures}
}

// chatRefused decides a fan's chat page answered with a session-check
// status (a 403; no send was made on it): the session is checked first (a
// rejected one pauses the creator); with a good session it is an unusable
// chat, and the probe chat tells the site refusing every chat (a bot or
// CDN rule on the chat route: an outage, uncounted) from this fan's chat
// alone, counted after the patience (chatFault). Taken for a refusal of
// this fan at once, a site-wide 403 on chat pages dead-lettered every
// creator's head message, and a read-back's dead-lettered a message the
// fan had (review 22 K).
func (p *Processor) chatRefused(ctx context.Context, s *sending, status int, detail string, attempts int) Outcome {
	if out, decided := p.unlessSessionGood(ctx, s.msg, s.creds, s.receives, detail, attempts-1, s.st.Failures); decided {
		return out
	}
	return p.chatFault(ctx, s, fmt.Errorf("%w: %w: %s (%d) with a session that checks good", onlyfans.ErrSiteDown, onlyfans.ErrChatUnusable, detail, status), attempts)
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
