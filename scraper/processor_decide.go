package scraper

import (
	"context"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// ledgerEpochSkew widens the ledger's epoch for the clocks of the API
// (acceptance time) and of the task (epoch).
const ledgerEpochSkew = time.Minute

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
	p.heldProof(id, &st, c)
	if st.Sent {
		return Outcome{Fate: AlreadySent, Failures: st.Failures}, nil, 0
	}
	if p.breaker.State() == gobreaker.StateOpen {
		return p.wait(ctx, id, receives, ClassCircuitOpen, "", p.cfg.BreakerOpenFor, 0, st.Failures), nil, 0
	}
	creds, err := p.creds.Get(ctx, creator)
	if err != nil {
		return p.wait(ctx, id, receives, ClassAuth, err.Error(), 0, 0, st.Failures), nil, 0
	}
	if out, held := p.unlessResumed(ctx, msg, creds, st, receives); held {
		return out, nil, 0
	}
	if out, settled := p.checkMarkStore(ctx, msg, &st, receives, c); settled {
		return out, nil, 0
	}
	if st.Attempting {
		if out, settled := p.recover(ctx, msg, creds, st, receives, c); settled {
			return out, nil, 0
		}
	}
	return p.send(ctx, msg, creds, st, receives, c)
}

// unlessResumed lifts a creator's pause when its session changed or, with
// the same session, checks good again (probePaused); otherwise the message
// waits (held true), uncounted.
func (p *Processor) unlessResumed(ctx context.Context, msg message.Message, creds onlyfans.Credentials, st State, receives int) (Outcome, bool) {
	id, creator := msg.MessageID, msg.CreatorKey()
	if st.PausedSession == "" {
		return Outcome{}, false
	}
	if st.PausedSession == creds.Version {
		if ok, why := p.probePaused(ctx, creator, creds); !ok {
			return p.wait(ctx, id, receives, ClassAuth, "creator paused: the site rejected its session; waiting for a new one"+why, 0, 0, st.Failures), true
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
	return Outcome{}, false
}

// checkMarkStore runs when Redis holds no mark: before a redelivered
// message (or one accepted before this Redis lost its data) is clicked,
// the mark store says whether an earlier click is still unresolved (then
// st and c know its mark) or the message was sent (settled true: already
// sent). A mark store that cannot say holds the message (settled true).
func (p *Processor) checkMarkStore(ctx context.Context, msg message.Message, st *State, receives int, c *click) (Outcome, bool) {
	id := msg.MessageID
	uncovered := msg.Timestamp.Before(st.Since.Add(ledgerEpochSkew))
	if st.Attempting || (receives <= 1 && !uncovered) {
		return Outcome{}, false
	}
	stored, found, err := p.marks.Get(ctx, id)
	if err != nil {
		return p.wait(ctx, id, receives, ClassInternal, "attempt marks unavailable: "+err.Error(), 0, 0, st.Failures), true
	}
	m := stored.Mark
	switch {
	case found && stored.Sent:
		p.log.WarnContext(ctx, "sent mark found in the mark store, not in Redis (Redis lost it): not sending again", "message_id", id)
		if err := p.ledger.MarkSent(ctx, id); err != nil {
			p.log.WarnContext(ctx, "sent mark not put back into Redis", "message_id", id, "error", err)
		}
		return Outcome{Fate: AlreadySent, Failures: st.Failures, Detail: "sent mark found in the mark store"}, true
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
	return Outcome{}, false
}
