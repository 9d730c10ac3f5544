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

// keepAnswered writes the answered proof m of msg to the mark store,
// trying again with a growing pause for AnsweredProofPatience while it
// refuses (the consumer's heartbeat keeps the message invisible
// meanwhile), and to Redis too on each try until Redis takes it: a
// message released with its proof in no store goes, on another task, to
// a read-back that may no longer find the copy (review 22 O). Past the
// patience, or when ctx ends (the task stops), the proof stays in this
// task's memory (answeredProofs) and the message is released; it reports
// whether the mark store took it.
func (p *Processor) keepAnswered(ctx context.Context, msg message.Message, m onlyfans.Mark) bool {
	id := msg.MessageID
	deadline := p.now().Add(p.cfg.AnsweredProofPatience)
	inRedis := false
	pause := 100 * time.Millisecond
	for try := 1; ; try++ {
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markStoreTimeout)
		if !inRedis {
			inRedis = p.ledger.MarkAttempting(callCtx, id, m) == nil
		}
		err := p.marks.Put(callCtx, id, msg.CreatorKey(), m)
		cancel()
		if err == nil {
			p.log.InfoContext(ctx, "answered-sent proof kept in the mark store", "message_id", id, "tries", try)
			return true
		}
		if !p.now().Add(pause).Before(deadline) || p.sleep(ctx, pause) != nil {
			p.log.ErrorContext(ctx, "answered-sent proof not written to the mark store: only this task's memory holds it (and Redis if it took it)",
				"message_id", id, "in_redis", inRedis, "tries", try, "error", err)
			return false
		}
		pause = min(2*pause, 2*time.Second)
	}
}
