package scraper

import (
	"context"
	"time"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

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
	// that durable); sentInRedis: Redis took its sent mark.
	sent, sentInRedis bool
	// settledAt is the latest ClickedAt of the clicks this processing
	// settled: the mark store's mark is deleted only up to it.
	settledAt int64
}

// clicked records the mark of a click made now.
func (c *click) clicked(m onlyfans.Mark) { c.mark, c.stored = &m, false }

// left records m, the mark of the click made now narrowed to when its
// request may have left (sending.left): the mark store gets it anew.
func (c *click) left(m onlyfans.Mark) {
	if c.mark != nil && c.mark.ClickedAt == m.ClickedAt {
		c.mark, c.stored = &m, false
	}
}

// answered records that the site answered the click sent while its
// settling waits (Mark.Answered): the mark store gets the mark anew.
func (c *click) answered() {
	if c.mark != nil {
		m := *c.mark
		m.Answered = true
		c.mark, c.stored = &m, false
	}
}

// known records the mark of an earlier click (from Redis, or stored).
func (c *click) known(m onlyfans.Mark, stored bool) { c.mark, c.stored, c.stale = &m, stored, true }

// markStoreTimeout bounds a mark store call at the end of a processing
// (it runs even when the processing's context ended: a shutdown).
const markStoreTimeout = 5 * time.Second

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
	processing := ctx // ends with the task (a shutdown stops keepProof's tries)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markStoreTimeout)
	defer cancel()
	id := msg.MessageID
	switch {
	case c.sent:
		// Until the mark store holds the sent mark, the proof stays in this
		// task's memory even when Redis took it: Redis is the store that
		// fails over or restarts empty (review 22 R B).
		if p.keepSent(processing, msg, c.sentInRedis) {
			p.proofs.drop(id)
		}
	case c.mark != nil && out.Action() != Delete:
		if c.stored {
			return
		}
		if c.mark.Answered {
			c.stored = p.keepAnswered(processing, msg, *c.mark)
			return
		}
		c.stored = p.keepAttempt(processing, msg, *c.mark)
	case c.stale || c.stored:
		at := c.settledAt
		if c.mark != nil {
			at = max(at, c.mark.ClickedAt)
		}
		if err := p.marks.Delete(ctx, id, at); err != nil {
			p.log.WarnContext(ctx, "settled attempt mark not deleted from the mark store (it expires)", "message_id", id, "error", err)
		}
	}
}

// settle records a click's outcome: sent (the sent mark) or not sent (the
// attempt mark cleared). Either way no click of it is unresolved any more.
// A sent message's proof stays in this task's memory (the caller put it
// there: settleSent) until the mark store takes the sent mark (keepMark →
// keepSent), whether Redis took it or not: Redis may hold only the mark
// from before the click (review 22 P B), or lose the sent mark it took in
// a failover or a restart (review 22 R B), and a redelivery (its delete
// refused) would then read the chat back, or click, when the copy may no
// longer be found.
func (p *Processor) settle(ctx context.Context, id string, c *click, sent bool) {
	c.sentInRedis = false
	if sent {
		if err := p.ledger.MarkSent(ctx, id); err != nil {
			p.log.WarnContext(ctx, "sent mark not written to Redis: the mark store is tried when this processing ends", "message_id", id, "error", err)
		} else {
			c.sentInRedis = true
		}
	} else {
		if err := p.ledger.ClearAttempting(ctx, id); err != nil {
			p.log.WarnContext(ctx, "attempt mark not cleared", "message_id", id, "error", err)
		}
		p.proofs.drop(id)
	}
	if c.mark != nil {
		c.settledAt = max(c.settledAt, c.mark.ClickedAt)
	}
	c.mark, c.stored, c.sent = nil, false, sent
}
