package scraper

import (
	"context"
	"fmt"
	"time"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// rememberSent records msg, found sent after the click of mark, as the
// last message sent to its fan, for the ledger's retention: a page a later
// message to that fan is clicked on must show it (staleClickPage),
// however long that message waited (review 22 J: a record bound to
// LateCommitHorizon let a click after a longer wait, a 429 or an outage,
// be made on a stale page, and the message was lost).
func (p *Processor) rememberSent(ctx context.Context, msg message.Message, mark onlyfans.Mark) error {
	ls := LastSent{Mark: mark, Digest: p.textDigest(msg), At: p.now().UnixMilli()}
	if err := p.ledger.RememberSent(ctx, msg.CreatorKey(), msg.RecipientID, ls); err != nil {
		return ledgerError{fmt.Errorf("sent, but the last message sent to the fan not recorded (the next click's page could not be checked against it): %w", err)}
	}
	return nil
}

// settleSent settles a click found sent: the fan's last-sent record first,
// then the sent mark. Without the record the click stays unsettled (its
// attempt mark kept) and the caller lets the message wait, uncounted: its
// read-back finds it sent again once Redis takes writes (review 22 L: a
// refused write left the earlier record, this server's, and a later click
// on a stale page took that message's copy of an identical text for its
// own: lost). So a sent mark always follows its record. The proof that
// it was sent (the site's 2xx, or a read-back that found it) is kept in
// the click's mark (answeredUnsettled): the next processing settles it
// from that proof, never from a read-back that may no longer find it.
func (p *Processor) settleSent(ctx context.Context, msg message.Message, mark onlyfans.Mark, c *click) error {
	if err := p.rememberSent(ctx, msg, mark); err != nil {
		p.answeredUnsettled(ctx, msg.MessageID, c)
		return err
	}
	proof := mark
	proof.Answered = true
	p.proofs.add(msg.MessageID, proof, p.now()) // until a store holds the sent mark (settle)
	p.settle(ctx, msg.MessageID, c, true)
	return nil
}

// answeredUnsettled keeps the proof of a click the site answered sent
// whose settling waits (settleSent refused): its mark, marked Answered, in
// this task's memory (heldProofs), in Redis if it takes the write and
// in the mark store (keepMark → keepAnswered, which tries again while it
// refuses), where a Redis refusing writes cannot lose it. The next
// processing settles it from that proof (answeredSent), with no read-back
// to fail.
func (p *Processor) answeredUnsettled(ctx context.Context, id string, c *click) {
	c.answered()
	if c.mark == nil {
		return
	}
	p.proofs.add(id, *c.mark, p.now())
	if err := p.ledger.MarkAttempting(ctx, id, *c.mark); err != nil {
		p.log.WarnContext(ctx, "answered-sent mark not written to Redis: the mark store is tried when this processing ends", "message_id", id, "error", err)
	}
}

// answeredSent reports whether an unresolved click of id was found sent
// (Mark.Answered): in st's mark (Redis's, or this task's memory:
// heldProof), or else in the mark store (Redis may still hold the mark
// written before the click, having refused the answered one). The stored
// answered mark becomes st's and c's, so that a processing that waits
// again keeps it (keepMark). So does a stored mark of a later click than
// st's: another processing's click, which a Redis that lost its data (or
// was restored from an older snapshot) no longer shows, and which this
// task's memory of its own older click would hide; the chat is read back
// against the later click (review 22 T A: read back against the older
// one, the message was settled not sent and clicked again while the later
// click could still land). A mark store that cannot say is an error: the
// caller waits, uncounted, rather than read the chat back (review 22 N:
// one refused read let a read-back dead-letter a sent message).
func (p *Processor) answeredSent(ctx context.Context, id string, st *State, c *click) (bool, error) {
	if st.Mark.Answered {
		return true, nil
	}
	stored, found, err := p.marks.Get(ctx, id)
	switch {
	case err != nil:
		return false, err
	case !found:
		return false, nil
	case stored.Mark.Answered:
		st.Mark = stored.Mark
		c.known(stored.Mark, true)
		return true, nil
	case !stored.Sent && stored.Mark.ClickedAt > st.Mark.ClickedAt:
		p.log.WarnContext(ctx, "the mark store holds a later click than Redis or this task's memory: reading the chat back against it",
			"message_id", id, "clicked_at", stored.Mark.ClickedAt, "known_clicked_at", st.Mark.ClickedAt)
		st.Mark = stored.Mark
		c.known(stored.Mark, true)
	}
	return stored.Sent, nil
}

// textDigest is the digest of msg's text as the site stores it (the key a
// Mark's Shown entries hold).
func (p *Processor) textDigest(msg message.Message) string {
	return onlyfans.Digest(p.browser.Profile().Text.Key(msg.Content))
}

// staleClickPage checks, right before a click, that the chat it is made on
// shows the last message sent to this fan: a page that does not (its
// read path behind the site's writes) would give this click a mark
// without that copy, and a read-back after a failed send would then take
// the earlier message's copy of an identical text for this one's (review
// 22 G: the message was lost). Such a page is the site's outage: the
// click waits, uncounted, while consecutive receives see it so for less
// than ChatFaultPatience (Ledger.StalePageSince; review 22 J: bound to
// LateCommitHorizon after that send, a click after a longer wait was made
// on a stale page). Past the patience the page is taken for what it also
// looks like, the creator having deleted that message, and the click is
// made (a read path behind for longer than the patience is the
// boundary, as for Verdict.Behind). A page that cannot be lined up with
// it (Unknown: many messages since) is let through. For the patience
// after the ledger's Redis server process changed (a restart, a
// failover), a fan without a record of this process waits too: the
// record this Redis holds, or its absence, may be older than the last
// message sent (review 22 K).
func (p *Processor) staleClickPage(ctx context.Context, s *sending, mark onlyfans.Mark) error {
	ls, err := p.ledger.LastSent(ctx, s.msg.CreatorKey(), s.msg.RecipientID, p.now())
	if err != nil {
		return ledgerError{err}
	}
	if !ls.ThisRun && !ls.RunSince.IsZero() {
		// This Redis server process serves since RunSince and holds no
		// record of its own for the fan: a restart from a snapshot or an
		// empty one, a failover, may have lost the last message's record
		// (review 22 K: an older record passed a stale page and the message
		// was lost). For the patience after that, nothing vouches for the
		// page: the click waits, uncounted, as the gate's fence holds every
		// send for its span.
		if since := p.now().Sub(ls.RunSince); since < p.cfg.ChatFaultPatience {
			return fmt.Errorf("%w: Redis serves the ledger only for %s (a restart or failover may have lost the last message sent to this fan): not clicked for %s after it",
				onlyfans.ErrSiteDown, since.Round(time.Millisecond), p.cfg.ChatFaultPatience)
		}
	}
	if !ls.Found {
		return nil
	}
	complete := mark.Complete && mark.Count == len(mark.Tail)
	v := ls.Mark.JudgeChat(mark.Tail, complete, ls.Digest)
	// A last message sent to a chat empty at its click and not shown now
	// may have scrolled out, or the page may render an empty history
	// (Unknown or Empty to a read-back, which must not click again on
	// it), or be stale: here the safe reading is the stale page (the
	// click waits, at most the patience).
	emptyAtItsClick := v.Outcome == onlyfans.Unknown && !ls.Mark.Legacy && ls.Mark.Count == 0 && v.Identical == 0
	if v.Outcome != onlyfans.NotSent && !v.Behind && !emptyAtItsClick {
		return nil
	}
	first, err := p.ledger.StalePageSince(ctx, s.msg.MessageID, s.receives, p.now())
	if err != nil {
		return ledgerError{err}
	}
	if seen := p.now().Sub(first); seen < p.cfg.ChatFaultPatience {
		return fmt.Errorf("%w: the chat page does not show the message sent to this fan last (a read path behind the site's writes), seen so for %s of the %s: not clicked on it",
			onlyfans.ErrSiteDown, seen.Round(time.Millisecond), p.cfg.ChatFaultPatience)
	}
	p.log.WarnContext(ctx, "the chat page still does not show the message sent to this fan last, past the patience: taken as deleted by the creator, clicked", "message_id", s.msg.MessageID, "creator_id", s.msg.CreatorKey())
	return nil
}
