package scraper

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// chatFault decides a send whose chat could not be used (nothing was
// clicked): the probe chat (Profile.ProbeChat) says whose fault it is. If
// it can be used, the site works, and the fan's own chat is opened again:
// a fault that persists (the same kind: no composer, no history, a non-
// gateway 5xx) may be this fan's chat alone (a deleted account, a corrupt
// thread). It counts as a failure only once the fan's chat has been seen
// so for ChatFaultPatience (brokenFanChat), so that after MaxFailures the
// message goes to the DLQ with its reason and the creator's later
// messages (one FIFO group) flow. A fault that did not persist, a probe
// chat that cannot be used either, or a probe that says nothing is the
// site's: an outage (a breaker failure, the growing capped delay,
// uncounted). A chat page a gateway answered (502/503/504, a CDN's
// 520-527: Profile.GatewayStatuses) never comes here: it is an outage at
// once (one dead backend behind a balancer fails the probe chat or the
// fan's at random, review 22 D).
func (p *Processor) chatFault(ctx context.Context, s *sending, err error, attempts int) Outcome {
	id, receives, failures := s.msg.MessageID, s.receives, s.st.Failures
	if p.breaker.State() == gobreaker.StateOpen {
		p.forgetBrokenChat(ctx, s)
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
		return p.brokenFanChat(ctx, s, err, attempts)
	case errors.Is(perr, onlyfans.ErrBrowserDown):
		return p.wait(ctx, id, receives, ClassBrowserDown, err.Error()+"; probe: "+perr.Error(), 0, attempts-1, failures)
	}
	// The site failed this receive (the probe chat, or the fan's chat
	// opened again): the fan's chat was not seen broken on it, so the
	// patience starts again (review 22 G: two sightings around an outage
	// longer than the patience counted at once).
	p.forgetBrokenChat(ctx, s)
	return p.wait(ctx, id, receives, ClassSiteDown, err.Error()+"; probe: "+perr.Error(), 0, attempts-1, failures)
}

// forgetBrokenChat forgets the first sighting of the fan's broken chat,
// when there is one: the chat worked, or the site failed this receive.
func (p *Processor) forgetBrokenChat(ctx context.Context, s *sending) {
	if s.st.ChatBrokenSince.IsZero() {
		return
	}
	if err := p.ledger.ForgetBrokenChat(ctx, s.msg.MessageID); err != nil {
		p.log.WarnContext(ctx, "the fan's broken chat not forgotten: a later fault counts sooner", "message_id", s.msg.MessageID, "error", err)
		return
	}
	s.st.ChatBrokenSince = time.Time{}
}

// brokenFanChat decides a fan's chat that failed again after a good probe:
// this message's failure once it has been seen so for ChatFaultPatience
// (ledger: since the first such receive, forgotten when the fan's chat
// worked), before that an outage's uncounted wait. One good probe between
// two bad loads proves little on a balancer with one broken backend; that
// it holds on every receive for the patience does.
func (p *Processor) brokenFanChat(ctx context.Context, s *sending, err error, attempts int) Outcome {
	id, receives, failures := s.msg.MessageID, s.receives, s.st.Failures
	since, lerr := p.ledger.ChatBrokenSince(ctx, id, p.now())
	if lerr != nil {
		return p.wait(ctx, id, receives, ClassInternal, "recording when the fan's chat was first seen unusable: "+lerr.Error(), 0, attempts-1, failures)
	}
	if seen := p.now().Sub(since); seen < p.cfg.ChatFaultPatience {
		return p.wait(ctx, id, receives, ClassSiteDown, fmt.Sprintf("%s; the probe chat can be used and the fan's chat still cannot, seen so for %s of the %s before it counts as this fan's chat alone",
			err.Error(), seen.Round(time.Millisecond), p.cfg.ChatFaultPatience), 0, attempts-1, failures)
	}
	p.log.WarnContext(ctx, "one fan's chat cannot be used, again, while the probe chat can: counted as this message's failure", "message_id", id, "creator_id", s.msg.CreatorKey(), "error", err)
	return p.fail(ctx, id, ClassChatUnusable, fmt.Sprintf("%s; the probe chat can be used and the fan's chat still cannot, for %s: this fan's chat alone is broken", err.Error(), p.now().Sub(since).Round(time.Second)), attempts-1)
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
		p.forgetBrokenChat(ctx, s)
		return fmt.Errorf("%w: the fan's chat, opened again after a good probe, works: a passing fault, not the fan's", onlyfans.ErrSiteDown)
	}
	// %v: not ErrChatUnusable (a gateway's answer, the site unreachable,
	// a 4xx or the login page the next send will judge).
	return fmt.Errorf("%w: the fan's chat, opened again after a good probe: %v", onlyfans.ErrSiteDown, err)
}
