package scraper

import (
	"context"
	"fmt"
	"time"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// rememberSent records msg, found sent after the click of mark, as the
// last message sent to its fan, for LateCommitHorizon: within it, a page a
// later message is clicked on must show it (staleClickPage).
func (p *Processor) rememberSent(ctx context.Context, msg message.Message, mark onlyfans.Mark) {
	ls := LastSent{Mark: mark, Digest: p.textDigest(msg), At: p.now().UnixMilli()}
	if err := p.ledger.RememberSent(ctx, msg.CreatorKey(), msg.RecipientID, ls, p.cfg.LateCommitHorizon+time.Minute); err != nil {
		p.log.WarnContext(ctx, "last message sent to the fan not recorded: the next click's page is not checked against it", "message_id", msg.MessageID, "error", err)
	}
}

// textDigest is the digest of msg's text as the site stores it (the key a
// Mark's Shown entries hold).
func (p *Processor) textDigest(msg message.Message) string {
	return onlyfans.Digest(p.browser.Profile().Text.Key(msg.Content))
}

// staleClickPage checks, right before a click, that the chat it is made on
// shows the last message sent to this fan: a page that does not (its
// read path one commit behind the site's writes) would give this click a
// mark without that copy, and a read-back after a failed send would then
// take the earlier message's copy of an identical text for this one's
// (review 22 G: the message was lost). Such a page is the site's outage:
// the click waits, uncounted. Only within LateCommitHorizon of that send
// (the record's life): a creator who deleted it does not hold the chat
// longer. A page that cannot be lined up with it (Unknown: many messages
// since) is let through.
func (p *Processor) staleClickPage(ctx context.Context, s *sending, mark onlyfans.Mark) error {
	ls, found, err := p.ledger.LastSent(ctx, s.msg.CreatorKey(), s.msg.RecipientID)
	if err != nil {
		return ledgerError{err}
	}
	if !found || p.now().Sub(time.UnixMilli(ls.At)) > p.cfg.LateCommitHorizon {
		return nil
	}
	complete := mark.Complete && mark.Count == len(mark.Tail)
	v := ls.Mark.JudgeChat(mark.Tail, complete, ls.Digest)
	if v.Outcome == onlyfans.NotSent || v.Behind {
		return fmt.Errorf("%w: the chat page does not show the message sent to this fan last (a read path behind the site's writes): not clicked on it", onlyfans.ErrSiteDown)
	}
	return nil
}
