package scraper

import (
	"context"
	"sync"
	"time"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// maxProofs bounds the proofs a task holds in memory: a proof leaves when
// the mark store holds it (a sent mark, an unresolved click's mark) or its
// message is settled sent (an answered one), so the set only grows while
// the mark store refuses writes; past the bound the oldest goes.
const maxProofs = 10000

// heldProofs is this task's memory of the clicks it let go of whose
// outcome no store may hold: those the site answered sent whose settling
// waits (Mark.Answered), whatever Redis and the mark store took (review
// 22 O: the proof lived only in the processing that got the 2xx, and a
// read-back that no longer found the copy dead-lettered the sent
// message); those settled sent until the mark store holds the sent mark
// (review 22 R B, as an Answered proof); and unresolved clicks until the
// mark store holds their mark (review 22 R A: a plain attempt mark, read
// back from memory). A redelivery to this task starts from it (heldProof).
type heldProofs struct {
	mu sync.Mutex
	m  map[string]proof
}

type proof struct {
	mark onlyfans.Mark
	at   time.Time
}

func (a *heldProofs) add(id string, m onlyfans.Mark, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]proof{}
	}
	if _, ok := a.m[id]; !ok && len(a.m) >= maxProofs {
		oldest := ""
		for k, v := range a.m {
			if oldest == "" || v.at.Before(a.m[oldest].at) {
				oldest = k
			}
		}
		delete(a.m, oldest)
	}
	a.m[id] = proof{mark: m, at: now}
}

func (a *heldProofs) get(id string) (onlyfans.Mark, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.m[id]
	return p.mark, ok
}

func (a *heldProofs) drop(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, id)
}

// proofWrite names what keepProof writes, in its log lines.
type proofWrite struct {
	what string
	// quietFirstTry: a write taken at the first try logs nothing. It is the
	// hot path's sent mark, one per message.
	quietFirstTry bool
}

var (
	answeredProofWrite = proofWrite{what: "answered-sent proof"}
	sentMarkWrite      = proofWrite{what: "sent mark", quietFirstTry: true}
	attemptMarkWrite   = proofWrite{what: "attempt mark of an unresolved click"}
)

// keepProof writes a message's proof (w: its Answered attempt mark, its
// sent mark, or an unresolved click's mark) to the mark store with store,
// trying again with a growing pause for AnsweredProofPatience while it
// refuses (the consumer's heartbeat keeps the message invisible
// meanwhile), and to Redis with inRedis on each try until Redis takes it:
// a message released with its proof in no store goes, on another task, to
// a read-back that may no longer find the copy (reviews 22 O, P B). When
// ctx ends (the task stops: settings keep the patience under its shutdown
// deadline) it makes a last try. Past the patience the proof stays in
// this task's memory (heldProofs) and the message is released; it reports
// whether the mark store took it.
func (p *Processor) keepProof(ctx context.Context, id string, w proofWrite, inRedis, store func(context.Context) error) bool {
	what := w.what
	deadline := p.now().Add(p.cfg.AnsweredProofPatience)
	redisTook, stopped := false, false
	pause := 100 * time.Millisecond
	for try := 1; ; try++ {
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markStoreTimeout)
		if !redisTook {
			redisTook = inRedis(callCtx) == nil
		}
		err := store(callCtx)
		cancel()
		if err == nil {
			if try > 1 || !w.quietFirstTry {
				p.log.InfoContext(ctx, what+" kept in the mark store", "message_id", id, "tries", try)
			}
			return true
		}
		if stopped || !p.now().Add(pause).Before(deadline) {
			p.log.ErrorContext(ctx, what+" not written to the mark store: only this task's memory holds it (and Redis if it took it)",
				"message_id", id, "in_redis", redisTook, "tries", try, "task_stopping", stopped, "error", err)
			return false
		}
		stopped = p.sleep(ctx, pause) != nil // then one last try
		pause = min(2*pause, 2*time.Second)
	}
}

// keepAnswered keeps the Answered mark m of msg (keepProof).
func (p *Processor) keepAnswered(ctx context.Context, msg message.Message, m onlyfans.Mark) bool {
	id := msg.MessageID
	return p.keepProof(ctx, id, answeredProofWrite,
		func(ctx context.Context) error { return p.ledger.MarkAttempting(ctx, id, m) },
		func(ctx context.Context) error { return p.marks.Put(ctx, id, msg.CreatorKey(), m) })
}

// keepSent keeps the sent mark of msg (keepProof): in the mark store, and
// in Redis unless inRedis (Redis took it already). The hot path, sent at
// the first click, makes one call: the mark store's PutItem.
func (p *Processor) keepSent(ctx context.Context, msg message.Message, inRedis bool) bool {
	id := msg.MessageID
	return p.keepProof(ctx, id, sentMarkWrite,
		func(ctx context.Context) error {
			if inRedis {
				return nil
			}
			return p.ledger.MarkSent(ctx, id)
		},
		func(ctx context.Context) error { return p.marks.PutSent(ctx, id, msg.CreatorKey()) })
}

// keepAttempt keeps the attempt mark m of msg's unresolved click
// (keepProof), in this task's memory until the mark store holds it: a
// mark held by Redis alone is lost with Redis (emptied, or restored from a
// snapshot older than the click), and the redelivery would click again
// while the first click may still land (review 22 R A). From memory,
// heldProof gives the redelivery its unresolved click to read back.
func (p *Processor) keepAttempt(ctx context.Context, msg message.Message, m onlyfans.Mark) bool {
	id := msg.MessageID
	p.proofs.add(id, m, p.now())
	if !p.keepProof(ctx, id, attemptMarkWrite,
		func(ctx context.Context) error { return p.ledger.MarkAttempting(ctx, id, m) },
		func(ctx context.Context) error { return p.marks.Put(ctx, id, msg.CreatorKey(), m) }) {
		return false
	}
	p.proofs.drop(id)
	return true
}

// heldProof makes a proof this task holds for id (heldProofs) st's
// and c's unresolved click, whatever Redis says: a Redis emptied, or
// restored from a snapshot older than the click, holds no mark that would
// lead to it, and the message would be clicked again (reviews 22 P A, R
// A). recover then settles it from an Answered proof (answeredSent), or
// reads the chat back from an unresolved click's mark. A mark Redis holds
// wins over a plain one from memory (it is as recent, or another task's
// later click): only a missing one is replaced. A later click that only
// the mark store holds wins too: recover's answeredSent reads it before
// any read-back (review 22 T A).
func (p *Processor) heldProof(id string, st *State, c *click) {
	if st.Sent || (st.Attempting && st.Mark.Answered) {
		return
	}
	m, ok := p.proofs.get(id)
	if !ok || (st.Attempting && !m.Answered) {
		return
	}
	st.Attempting, st.Mark = true, m
	c.known(m, false) // keepMark writes it to the mark store again if it waits
}
