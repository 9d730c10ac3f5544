package scraper

import (
	"context"
	"errors"
	"fmt"

	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// chatFault decides a send whose chat could not be used (nothing was
// clicked): the probe chat (Profile.ProbeChat) says whose fault it is. If
// it can be used, the site works, and the fan's own chat is opened again:
// a fault that persists (the same kind: no composer, no history, a non-
// gateway 5xx) is this fan's chat alone (a deleted account, a corrupt
// thread): a counted failure, so that after MaxFailures the message goes
// to the DLQ with its reason and the creator's later messages (one FIFO
// group) flow. A fault that did not persist, a probe chat that cannot be
// used either, or a probe that says nothing is the site's: an outage (a
// breaker failure, the growing capped delay, uncounted). A chat page a
// gateway answered (502/503/504: Profile.GatewayStatuses) never comes
// here: it is an outage at once (one dead backend behind a balancer fails
// the probe chat or the fan's at random, review 22 D).
func (p *Processor) chatFault(ctx context.Context, s *sending, err error, attempts int) Outcome {
	id, receives, failures := s.msg.MessageID, s.receives, s.st.Failures
	if p.breaker.State() == gobreaker.StateOpen {
		return p.wait(ctx, id, receives, ClassCircuitOpen, err.Error()+"; chat not probed: breaker open", p.cfg.BreakerOpenFor, attempts-1, failures)
	}
	perr := p.browser.ProbeChat(ctx, s.msg.CreatorKey(), s.creds, s.msg.RecipientID)
	if perr == nil {
		perr = p.stillBroken(ctx, s)
	}
	p.noteFailure(perr)
	switch {
	case perr == nil:
		// The site works: the breaker counts a success, so one fan's
		// broken chat (a breaker failure, as any unusable chat page is)
		// never opens it.
		_, _ = p.breaker.Execute(func() (onlyfans.Result, error) { return onlyfans.Result{}, nil })
		p.log.WarnContext(ctx, "one fan's chat cannot be used, again, while the probe chat can: counted as this message's failure", "message_id", id, "creator_id", s.msg.CreatorKey(), "error", err)
		return p.fail(ctx, id, ClassChatUnusable, err.Error()+"; the probe chat can be used and the fan's chat still cannot: this fan's chat alone is broken", attempts-1)
	case errors.Is(perr, onlyfans.ErrBrowserDown):
		return p.wait(ctx, id, receives, ClassBrowserDown, err.Error()+"; probe: "+perr.Error(), 0, attempts-1, failures)
	}
	return p.wait(ctx, id, receives, ClassSiteDown, err.Error()+"; probe: "+perr.Error(), 0, attempts-1, failures)
}

// stillBroken opens the fan's chat again after the probe chat worked: nil
// when it fails the same way (ErrChatUnusable: the fan's fault persists),
// else why it is not the fan's fault (it works now, or the site failed
// this time), an ErrSiteDown.
func (p *Processor) stillBroken(ctx context.Context, s *sending) error {
	err := p.browser.CheckChat(ctx, s.msg.CreatorKey(), s.creds, s.msg.RecipientID)
	switch {
	case errors.Is(err, onlyfans.ErrChatUnusable):
		return nil
	case err == nil:
		return fmt.Errorf("%w: the fan's chat, opened again after a good probe, works: a passing fault, not the fan's", onlyfans.ErrSiteDown)
	}
	// %v: not ErrChatUnusable (a gateway's answer, the site unreachable,
	// a 4xx or the login page the next send will judge).
	return fmt.Errorf("%w: the fan's chat, opened again after a good probe: %v", onlyfans.ErrSiteDown, err)
}
