package scraper

import (
	"context"
	"sync"
	"time"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// maxProofs bounds the answered proofs a task holds in memory: a proof
// leaves when its message is settled sent, so the set only grows while
// Redis and the mark store both refuse writes; past the bound the oldest
// goes (its mark store copy, if written, still answers).
const maxProofs = 10000

// answeredProofs is this task's memory of the clicks the site answered
// sent whose settling waits (Mark.Answered), whatever Redis and the mark
// store took: a redelivery to this task settles from it even when both
// refused the proof (review 22 O: the proof lived only in the processing
// that got the 2xx, and a read-back that no longer found the copy
// dead-lettered the sent message).
type answeredProofs struct {
	mu sync.Mutex
	m  map[string]proof
}

type proof struct {
	mark onlyfans.Mark
	at   time.Time
}

func (a *answeredProofs) add(id string, m onlyfans.Mark, now time.Time) {
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

func (a *answeredProofs) get(id string) (onlyfans.Mark, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.m[id]
	return p.mark, ok
}

func (a *answeredProofs) drop(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, id)
}

// keepProof writes a proof that msg was sent (what: its Answered attempt
// mark, or its sent mark) to the mark store with store, trying again with
// a growing pause for AnsweredProofPatience while it refuses (the
// consumer's heartbeat keeps the message invisible meanwhile), and to
// Redis with inRedis on each try until Redis takes it: a message released
// with its proof in no store goes, on another task, to a read-back that
// may no longer find the copy (reviews 22 O, P B). When ctx ends (the
// task stops: settings keep the patience under its shutdown deadline) it
// makes a last try. Past the patience the proof stays in this task's
// memory (answeredProofs) and the message is released; it reports
// whether the mark store took it.
func (p *Processor) keepProof(ctx context.Context, id, what string, inRedis, store func(context.Context) error) bool {
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
			p.log.InfoContext(ctx, what+" kept in the mark store", "message_id", id, "tries", try)
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
	return p.keepProof(ctx, id, "answered-sent proof",
		func(ctx context.Context) error { return p.ledger.MarkAttempting(ctx, id, m) },
		func(ctx context.Context) error { return p.marks.Put(ctx, id, msg.CreatorKey(), m) })
}

// keepSent keeps the sent mark of msg, which Redis refused (keepProof).
func (p *Processor) keepSent(ctx context.Context, msg message.Message) bool {
	id := msg.MessageID
	return p.keepProof(ctx, id, "sent mark",
		func(ctx context.Context) error { return p.ledger.MarkSent(ctx, id) },
		func(ctx context.Context) error { return p.marks.PutSent(ctx, id, msg.CreatorKey()) })
}

// heldProof makes a proof this task holds for id (answeredProofs) st's
// and c's unresolved click, whatever Redis says: a Redis emptied, or
// restored from a snapshot older than the click, holds no mark that would
// lead to it, and the message would be clicked again (review 22 P A).
// recover then settles it from the proof (answeredSent).
func (p *Processor) heldProof(id string, st *State, c *click) {
	if st.Sent || (st.Attempting && st.Mark.Answered) {
		return
	}
	if m, ok := p.proofs.get(id); ok {
		st.Attempting, st.Mark = true, m
		c.known(m, false) // keepMark writes it to the mark store again if it waits
	}
}
