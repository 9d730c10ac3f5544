package scraper_test

import (
	"strings"
	"testing"
	"time"
)

// TestRev22MDARedisRefusingTheLastSentWriteTurnsAnAnswered2xxIntoADeadLetter:
//
// Promise (c): a Redis outage never puts a message in a DLQ (and (a): a
// message the site accepted is settled sent, not left to a guess).
//
// Fault: Redis refuses writes (used memory over maxmemory, noeviction:
// "OOM command not allowed") from the moment the second message's send
// request reaches the site until 3 s later; the site accepts that send
// (200, application/json: proof it was sent). Meanwhile the fan replies
// (three messages, as fans do) and the chat, like every chat web app,
// shows only its latest messages (3 here): the message the click was
// anchored on scrolls out of view.
//
// Why: review 22 L moved rememberSent before the sent mark (settleSent,
// processor_lastsent.go:33-39): when Redis refuses the lastsent write the
// click that the site answered 2xx is not settled; afterClick
// (processor_send.go:151-154) lets the message wait "uncounted", and the
// proof of the 2xx is thrown away: nothing records it (the mark store
// keeps only the attempt mark, processor_marks.go keepMark). The next
// receive recovers it like a click of unknown outcome (recover,
// processor_readback.go:23-44): the read-back can no longer line the chat
// up with the click's anchor ("the messages shown last at the click are no
// longer shown") → undecided → fail(ClassOutcomeUnknown), counted, and
// after MAX_FAILURES the message that was sent is dead-lettered
// (outcome_unknown): a Redis outage, not the message, put it in the DLQ
// (and an operator redriving it sends it twice).
//
// Suggested fix: keep the 2xx's verdict where a refusing Redis cannot
// lose it: when rememberSent fails after a 2xx, settle the message sent
// in the mark store (MarkStore.PutSent, DynamoDB, which does not depend
// on Redis) and/or write the sent mark anyway, and record the fan as
// "last message unrecorded" there (or keep the message's mark flagged
// answered2xx) so the fan's next click waits for the record (the stale
// page concern of review 22 L) instead of discarding the site's answer.
// Fixed: the click's mark is kept marked Answered (Redis if it takes it,
// the mark store always); the next processing settles it from that proof
// (answeredSent), with no read-back to fail.
func TestRev22MDARedisRefusingTheLastSentWriteTurnsAnAnswered2xxIntoADeadLetter(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	f := setup(t, cfg)
	ok := f.answeredWhileRedisRefuses(t, cfg, 3*time.Second, func() {}, false)
	f.deliveredInOrderNoDLQ(t, ok, answeredTexts, "not recorded", "no longer shown", "dead-letter")
	// AND it was settled from the site's answer, not from a read-back
	if !strings.Contains(f.logs.String(), "the site answered its click") {
		t.Fatalf("not settled from the site's 2xx:\n%s", linesWith(f.logs.String(), "not recorded", "sent"))
	}
}
