package scraper_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/test/wait"
)

// TestRev22PAMemoryProofIgnoredWhenRedisComesBackEmpty:
//
// Promise (a): every accepted message reaches the fan exactly once, never
// twice; (c): outages (Redis refusing writes, restarting empty; the mark
// store's DynamoDB refusing calls) are waited out.
//
// Fault: review 22 O's scenario (answeredWhileRedisRefuses: two messages to
// one fan; from the second message's send request Redis refuses writes,
// the site answers that send 200, the fan replies) with the mark store's
// DynamoDB refusing writes (PutItem) from that send for longer than
// AnsweredProofPatience (testConfig: 5 s). Right after keepAnswered gave up
// (the proof held only in the task's memory, heldProofs), the OOM'd
// Redis is restarted (empty, same port: the usual cure for an OOM, or a
// failover); the mark store takes writes again 3 s after that. One task
// throughout: the same process memory that holds the proof receives the
// message again.
//
// Why: the memory proof is read only by answeredSent
// (processor_lastsent.go:71-92), which runs only from recover
// (processor_readback.go:27), which decide (processor_decide.go:46-50)
// reaches only when st.Attempting, i.e. when Redis holds a mark or
// checkMarkStore found one in the mark store. With Redis emptied and the
// mark store never having taken the proof, checkMarkStore
// (processor_decide.go:84-117, line 109) finds nothing and, the message being
// "uncovered" (accepted before the new epoch) and redelivered, logs
// "Redis lost the ledger ... sending" and the message is clicked again
// (after the gate's fence): the fan gets "did you see my pic?" twice,
// although this very task holds the site's 2xx for it. Nothing writes the
// memory proof to the store again meanwhile: keepMark (processor_marks.go)
// only runs keepAnswered when c.mark is Answered, and c never learns the
// memory proof on this path.
//
// The second case restarts Redis from a snapshot SAVEd when the site
// recorded the first send (before the second message's attempt mark): the
// epoch survives, the message is not "uncovered", checkMarkStore finds no
// stored mark and returns without a case, and send clicks it again (the
// fan's last-sent record is gone with the snapshot too). Both cases fail
// on the fan holding the second text twice.
//
// Suggested fix: consult p.proofs in checkMarkStore (before or instead of
// "not found"/"uncovered"): a proof in memory sets st.Attempting and
// st.Mark (Answered) and c.known(m, false), so recover settles it from the
// proof (and keepMark writes it to the store again if it waits). More
// generally read the memory proof at the top of decide, whatever Redis
// says.
//
// Fixed (processor_proofs.go heldProof): decide makes a proof this task
// holds the message's unresolved click whatever Redis says; recover
// settles it from the proof, no click.
func TestRev22PAMemoryProofIgnoredWhenRedisComesBackEmpty(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		snapshot bool
	}{
		// State has no epoch: checkMarkStore's "uncovered" branch sends.
		{"redis restarted empty", false},
		// A snapshot taken as the first message was sent (before the
		// second's attempt mark): the epoch is kept, nothing is uncovered,
		// and checkMarkStore falls through to the click.
		{"redis restarted from a snapshot taken before the second click", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			memoryProofThenRedisRestart(t, tc.snapshot)
		})
	}
}

// memoryProofThenRedisRestart runs answeredWhileRedisRefuses with the mark
// store refusing writes from the second send, and restarts Redis (empty,
// or from a snapshot SAVEd when the site recorded the first send) right
// after keepAnswered gave up on the mark store.
func memoryProofThenRedisRestart(t *testing.T, snapshot bool) {
	cfg := testConfig()
	f := setup(t, cfg)
	ddbFailing, ddbRefused := f.markStoreRefusingWrites()
	var h harnessErrors
	var restarted atomic.Bool
	restart := f.redis.Redis.Restart
	if snapshot {
		var once sync.Once
		rdb := f.redis.Client()
		f.site.OnSent(func(fakesite.Sent) { once.Do(func() { h.check(rdb.Save(context.Background()).Err()) }) })
		restart = f.redis.Redis.RestartFromSnapshot
	}
	ok := f.answeredWhileRedisRefuses(t, cfg, time.Minute, func() {
		ddbFailing.Store(true)
		go func() {
			// Right after the first keepAnswered gave up: the proof is
			// in this task's memory only.
			if !wait.Until(30*time.Second, 10*time.Millisecond, func() bool {
				return strings.Contains(f.logs.String(), "only this task's memory holds it")
			}) {
				return
			}
			h.check(restart())
			restarted.Store(true)
			time.AfterFunc(3*time.Second, func() { ddbFailing.Store(false) })
		}()
	}, false)
	h.fatalIfAny(t)
	if ddbRefused.Load() == 0 || !restarted.Load() {
		t.Fatalf("harness: %d mark store writes refused, Redis restarted %t", ddbRefused.Load(), restarted.Load())
	}
	f.deliveredInOrderNoDLQ(t, ok, answeredTexts, "not recorded", "answered-sent", "Redis lost", "sending", "dead-letter", "mark store", "taken as deleted")
}
