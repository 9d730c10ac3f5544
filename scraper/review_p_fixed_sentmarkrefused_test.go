package scraper_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/scraper"
)

// oomAtSentMark makes Redis run out of memory right as the ledger writes
// the sent mark of one message (the fan's last-sent record just before it
// was the write that filled it): from that SET on, Redis refuses writes
// for d (refuseRedisWritesFor), and then runs.
type oomAtSentMark struct {
	key   string
	admin *redis.Client
	d     time.Duration
	h     *harnessErrors
	fired *atomic.Bool
	then  func()
}

func (o oomAtSentMark) DialHook(next redis.DialHook) redis.DialHook { return next }

func (o oomAtSentMark) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); strings.EqualFold(cmd.Name(), "set") && len(args) > 1 && fmt.Sprint(args[1]) == o.key && o.fired.CompareAndSwap(false, true) {
			refuseRedisWritesFor(o.admin, o.d, o.h)
			o.then()
		}
		return next(ctx, cmd)
	}
}

func (o oomAtSentMark) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// deleteFailingSQS refuses one DeleteMessage once armed (SQS throttling
// the call past the SDK's retries); the message comes back after its
// visibility (compressed to now). lose, if set, runs at that moment (the
// ledger's Redis failing over to an empty replica: review 22 R B).
type deleteFailingSQS struct {
	scraper.SQSAPI
	armed   *atomic.Bool
	refused *atomic.Int64
	lose    func()
}

func (s deleteFailingSQS) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if s.armed.CompareAndSwap(true, false) {
		s.refused.Add(1)
		if s.lose != nil {
			s.lose()
		}
		// The queue's visibility timeout (600 s) compressed: the message
		// is visible again at once, as it would be after it.
		if _, err := s.SQSAPI.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: in.QueueUrl, ReceiptHandle: in.ReceiptHandle}); err != nil {
			return nil, err
		}
		return nil, errors.New("ThrottlingException: Rate exceeded")
	}
	return s.SQSAPI.DeleteMessage(ctx, in, o...)
}

// TestRev22PBSentMarkRefusedDropsTheProofAndARedeliveryDeadLetters:
//
// Promise (c): outages (Redis refusing writes, the mark store's DynamoDB
// refusing writes, SQS refusing a call) never put a message in a DLQ;
// (a): a message the site answered 2xx is never dead-lettered (a redrive
// sends it twice).
//
// Fault: two messages to one fan (the scaffold of reviews M D/N B/O: the
// fan replies after the second send and the chat, showing its latest 3
// messages, scrolls the click's anchor out of view). The site answers the
// second send 200; the scraper writes the fan's last-sent record, and
// that write fills Redis: from the sent mark's SET on, Redis refuses
// writes (OOM, noeviction) for 3 s. The mark store's DynamoDB refuses
// writes for those 3 s too (the pairing of review 22 O), and SQS refuses
// the message's DeleteMessage once (throttled; the queue's 600 s
// visibility timeout is compressed: it is visible again at once).
// Everything is back 3 s later.
//
// Why: settle (processor_marks.go:91-102) logs the refused MarkSent
// ("The attempt mark and the read-back still prevent a resend") and
// drops the task's memory proof (p.proofs.drop, line 100) and the click's
// mark whatever MarkSent did; keepMark's PutSent (processor_marks.go:65-68)
// is refused and only logged ("only Redis holds it": false, Redis holds
// only the pre-click attempt mark). The refused delete
// (consumer.go:373-380) brings the message back after its visibility. The
// redelivery finds Redis's pre-click mark (not Answered, not sent), so
// recover → answeredSent (processor_lastsent.go:71-92) finds no proof in
// Redis, in memory or in the mark store, and reads the chat back with
// the pre-click mark: the anchor is gone, "no longer shown", undecided →
// fail(outcome_unknown), counted now that Redis takes writes, and after
// MaxFailures the sent message is dead-lettered: the very read-back that
// reviews M, N and O showed cannot be relied on after the chat moved on.
// The fan's last-sent record, which Redis did take and which names this
// message's text and mark, is not consulted either.
//
// Suggested fix: in settle, when MarkSent is refused keep the proof: leave
// it in heldProofs (drop only once Redis or the mark store holds the
// sent mark), write the Answered mark to Redis when it takes writes again,
// and make keepMark's refused PutSent go through keepAnswered's retries
// (a sent mark the mark store refuses is as much a lone proof as an
// Answered one). Alternatively have recover consult the fan's last-sent
// record (same digest and mark) before a read-back.
//
// Fixed: settleSent keeps the proof in the task's memory until a store
// holds the sent mark; settle drops it only when Redis took the sent
// mark, and keepMark retries a sent mark Redis refused on the mark store
// (keepSent, for the proof's patience).
func TestRev22PBSentMarkRefusedDropsTheProofAndARedeliveryDeadLetters(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	f := setup(t, cfg)
	var h harnessErrors
	var ddbFailing, oomFired, deleteArmed atomic.Bool
	var ddbRefused, deletesRefused atomic.Int64
	f.marks = scraper.NewDynamoMarks(putFailingDDB{DynamoDBAPI: f.ddbCalls, failing: &ddbFailing, refused: &ddbRefused}, attemptsTable, time.Hour, time.Now)

	first, second := f.newMessage("creator-a", answeredTexts[0]), f.newMessage("creator-a", answeredTexts[1])
	hooked := redis.NewClient(&redis.Options{Addr: f.redis.Addr})
	t.Cleanup(func() { _ = hooked.Close() })
	hooked.AddHook(oomAtSentMark{key: "scraper:test:sent:" + second.MessageID, admin: f.redis.Client(), d: 3 * time.Second, h: &h, fired: &oomFired,
		then: func() {
			ddbFailing.Store(true)
			deleteArmed.Store(true)
			time.AfterFunc(3*time.Second, func() { ddbFailing.Store(false) })
		}})
	f.ledger = scraper.NewLedger(hooked, "scraper:test", time.Hour)

	var sends atomic.Int64
	var fanReplied atomic.Bool
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				origin.ServeHTTP(w, r)
				if sends.Add(1) == 2 {
					fanReplied.Store(true)
				}
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				serveRewritten(w, r, origin, func(page string) string { return chatAsAppShowsIt(page, fanReplied.Load()) })
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	f.consumer = scraper.NewConsumer(f.consumerConfig(), deleteFailingSQS{SQSAPI: f.aws.SQS, armed: &deleteArmed, refused: &deletesRefused}, f.ledger, f.proc,
		slog.New(slog.NewJSONHandler(f.logs, nil)))
	f.enqueue(first, second)
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	h.fatalIfAny(t)
	if !oomFired.Load() || ddbRefused.Load() == 0 || deletesRefused.Load() != 1 {
		t.Fatalf("harness: OOM at the sent mark %t, %d mark store writes refused, %d deletes refused:\n%s", oomFired.Load(), ddbRefused.Load(), deletesRefused.Load(),
			linesWith(f.logs.String(), "sent mark", "delete", "message processed"))
	}
	f.deliveredInOrderNoDLQ(t, ok, answeredTexts, "message processed", "sent mark", "delete failed", "no longer shown", "dead-letter", "answered-sent", "mark store")
}
