package scraper

import (
	"context"
	"errors"

	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// chatFault decides a send whose chat could not be used (nothing was
// clicked): the probe chat (Profile.ProbeChat) says whose fault it is. If
// it can be used, the site works and this fan's chat alone is broken (a
// deleted account, a corrupt thread): a counted failure, so that after
// MaxFailures the message goes to the DLQ with its reason and the
// creator's later messages (one FIFO group) flow. If it cannot be used
// either, or the probe says nothing, the site cannot send: an outage (a
// breaker failure, the growing capped delay, uncounted).
func (p *Processor) chatFault(ctx context.Context, s *sending, err error, attempts int) Outcome {
	id, receives, failures := s.msg.MessageID, s.receives, s.st.Failures
	if p.breaker.State() == gobreaker.StateOpen {
		return p.wait(ctx, id, receives, ClassCircuitOpen, err.Error()+"; chat not probed: breaker open", p.cfg.BreakerOpenFor, attempts-1, failures)
	}
	perr := p.browser.ProbeChat(ctx, s.msg.CreatorKey(), s.creds, s.msg.RecipientID)
	p.noteFailure(perr)
	switch {
	case perr == nil:
		// The site works: the breaker counts a success, so one fan's
		// broken chat (a breaker failure, as any unusable chat page is)
		// never opens it.
		_, _ = p.breaker.Execute(func() (onlyfans.Result, error) { return onlyfans.Result{}, nil })
		p.log.WarnContext(ctx, "one fan's chat cannot be used while the probe chat can: counted as this message's failure", "message_id", id, "creator_id", s.msg.CreatorKey(), "error", err)
		return p.fail(ctx, id, ClassChatUnusable, err.Error()+"; the probe chat can be used: this fan's chat alone is broken", attempts-1)
	case errors.Is(perr, onlyfans.ErrBrowserDown):
		return p.wait(ctx, id, receives, ClassBrowserDown, err.Error()+"; probe: "+perr.Error(), 0, attempts-1, failures)
	}
	return p.wait(ctx, id, receives, ClassSiteDown, err.Error()+"; probe: "+perr.Error(), 0, attempts-1, failures)
}
