package scraper

import (
	"context"
	"fmt"

	"github.com/huntaze/message-pipeline/internal/message"
)

// Reasons of a message dead-lettered by the scraper before the queue's
// redrive backstop (Config.MaxReceiveCount), which would move it without
// any reason.
const (
	// ClassSessionRejectedTooLong: the creator stayed paused (its session
	// rejected, not renewed) for nearly maxReceiveCount receives (about 10
	// days at the 15 minute cap).
	ClassSessionRejectedTooLong = "session_rejected_too_long"
	// ClassOutageTooLong: an outage (or any other wait that is not the
	// message's fault) lasted that long.
	ClassOutageTooLong = "outage_too_long"
)

// backstopMargin is how many receives before the queue's maxReceiveCount
// a message still waiting is dead-lettered here: ApproximateReceiveCount
// is approximate, and a receive the scraper never gets (a task dying
// after the receive) counts too.
const backstopMargin = 10

// beforeBackstop dead-letters, with its reason, a message that would come
// back once more (released or failed) this close to the queue's redrive
// backstop. A paused creator's message, or one waiting out a very long
// outage, then goes to the DLQ with session_rejected_too_long or
// outage_too_long (an operator redrives it once the cause is gone), never
// through maxReceiveCount without a failure_reason (docs/design.md).
func (p *Processor) beforeBackstop(ctx context.Context, msg message.Message, receives int, out Outcome) Outcome {
	if receives < p.cfg.MaxReceiveCount-backstopMargin {
		return out
	}
	switch out.Fate {
	case Released:
		class := ClassOutageTooLong
		if out.Class == ClassAuth {
			class = ClassSessionRejectedTooLong
		}
		out.Detail = fmt.Sprintf("still waiting after %d receives (%s: %s); the queue's backstop (maxReceiveCount %d) would dead-letter it without a reason", receives, out.Class, out.Detail, p.cfg.MaxReceiveCount)
		out.Fate, out.Class, out.Delay = DeadLettered, class, 0
	case Failed:
		out.Detail = fmt.Sprintf("%s (failure %d, after %d receives: dead-lettered before the queue's backstop, maxReceiveCount %d)", out.Detail, out.Failures, receives, p.cfg.MaxReceiveCount)
		out.Fate, out.Delay = DeadLettered, 0
	default:
		return out
	}
	p.log.ErrorContext(ctx, "message dead-lettered before the queue's redrive backstop", "message_id", msg.MessageID, "creator_id", msg.CreatorKey(), "receives", receives, "class", out.Class)
	return out
}
