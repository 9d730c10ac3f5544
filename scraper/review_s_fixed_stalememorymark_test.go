package scraper_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/harness"
	"github.com/huntaze/message-pipeline/test/wait"
)

// turnSQS is one task's SQS client: it receives only while turn names it
// (the other task's long polls get the message meanwhile: which task SQS
// hands a redelivery to is its choice), and runs onVisibility before each
// visibility change of a processing's end (a release).
type turnSQS struct {
	scraper.SQSAPI
	name         string
	turn         *atomic.Value
	onVisibility func()
}

func (s turnSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if s.turn.Load() != s.name {
		time.Sleep(100 * time.Millisecond)
		return &sqs.ReceiveMessageOutput{}, nil
	}
	return s.SQSAPI.ReceiveMessage(ctx, in, o...)
}

func (s turnSQS) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if s.onVisibility != nil {
		s.onVisibility()
	}
	return s.SQSAPI.ChangeMessageVisibility(ctx, in, o...)
}

// task is one scraper task of its own (browser, ledger, gate, processor
// and so its memory of proofs) on the fixture's Redis, mark store and
// queues, reaching the site at siteURL.
func (f *fixture) task(cfg scraper.Config, siteURL, name string, client scraper.SQSAPI) *scraper.Consumer {
	f.t.Helper()
	sender := newSender(f.t, onlyfans.Config{BaseURL: siteURL, Browser: browser.Options{DriverDir: harness.DriverDir(f.t)}, RecycleAfter: 20, Traces: true, Timeouts: fastSender})
	f.t.Cleanup(func() { _ = sender.Close() })
	log := slog.New(slog.NewJSONHandler(f.logs, nil)).With("task", name)
	gate, err := ratelimit.New(f.redis.Client(), gateWith(cfg, openGate))
	if err != nil {
		f.t.Fatal(err)
	}
	ledger := scraper.NewLedger(f.redis.Client(), "scraper:test", time.Hour)
	proc, err := scraper.NewProcessor(cfg, sender, gate, f.sessions, ledger, f.marks, f.results, log,
		metrics.New(f.emf, map[string]string{"Service": "scraper"}, time.Now), time.Now)
	if err != nil {
		f.t.Fatal(err)
	}
	return scraper.NewConsumer(f.consumerConfig(), client, ledger, proc, log)
}

// TestRev22SAStaleMemoryMarkOverridesAnotherTasksLaterClick (review 22 S,
// finding A):
//
// Promise (a): every accepted message reaches the fan exactly once; (c):
// outages (the mark store refusing writes, a hanging site, a chat page
// answering 502, Redis emptied by a failover) are waited out.
//
// Fault (two tasks, A and B; one message):
//  1. Task A clicks; the site hangs the send request (no answer, never
//     committed). A's read-back finds nothing, the click may still land:
//     A releases it with its attempt mark M1, which the mark store refuses
//     past AnsweredProofPatience (review 22 R A's fault): M1 stays in A's
//     memory (keepAttempt) and in Redis.
//  2. The redelivery goes to task B, after M1's horizon: B reads back M1
//     (not sent), clears it and clicks again (M2). The site hangs that
//     request too, and its origin commits it 12 s later (review 22 C's
//     origin, inside the 15 s horizon). B's read-back meets a 502 chat
//     page (the site's outage): B releases the message with M2, which the
//     mark store now takes (and Redis).
//  3. Redis is emptied (a failover to an empty replica: review 22 D).
//  4. The redelivery goes to task A. Redis holds no mark, so heldProof
//     makes A's memory mark M1 (from step 1) the unresolved click:
//     st.Attempting set, checkMarkStore skips the mark store (which holds
//     M2), answeredSent reads it only for Answered/Sent. A reads the chat
//     back against M1: click 2 has not committed yet, M1's horizon is long
//     past, so "interrupted attempt did not send; sending again": the
//     attempt mark is cleared and (c.stale) the mark store's M2 deleted.
//  5. Click 2 commits; the message is clicked a third time (once the
//     gate's fence lifts): the fan has it twice.
//
// Why: heldProof (processor_proofs.go) gives the memory's plain mark
// precedence whenever Redis holds none, but a memory mark is only this
// task's last word: another task may have settled it and clicked since
// (its newer mark in the mark store). "A mark Redis holds wins" is not
// enough once Redis is emptied; the mark store's newer mark is never
// looked at (checkMarkStore returns at st.Attempting).
//
// The same break as review 22 T A, found independently, B letting go on
// a 502 chat page instead of a refused visibility change. Fixed with it:
// answeredSent reads back against the mark store's later click, and the
// store's Delete leaves a later click's mark
// (review_t_fixed_staleheldmark_test.go).
func TestRev22SAStaleMemoryMarkOverridesAnotherTasksLaterClick(t *testing.T) {
	cfg := testConfig()
	f := setup(t, cfg)
	ddbFailing, ddbRefused := f.markStoreRefusingWrites()
	var h harnessErrors
	committed := make(chan struct{})
	var posts atomic.Int64
	var bad502, flushed atomic.Bool
	front := func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				switch posts.Add(1) {
				case 1: // hangs, never committed
					ddbFailing.Store(true)
					select { // no answer: the client times out and leaves
					case <-r.Context().Done():
					case <-time.After(12 * time.Second):
					}
					return
				case 2: // hangs, committed 12 s after the click
					commitLater(origin, r, 12*time.Second, committed)
					bad502.Store(true)
					select {
					case <-r.Context().Done():
					case <-time.After(12 * time.Second):
					}
					return
				}
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") && bad502.CompareAndSwap(true, false) {
				w.WriteHeader(http.StatusBadGateway)
				_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
				return
			}
			origin.ServeHTTP(w, r)
		})
	}
	o, _ := url.Parse(f.site.URL)
	srv := httptest.NewServer(front(httputil.NewSingleHostReverseProxy(o)))
	t.Cleanup(srv.Close)

	turn := new(atomic.Value)
	turn.Store("A")
	var toB, toA atomic.Bool
	a := f.task(cfg, srv.URL, "A", turnSQS{SQSAPI: f.aws.SQS, name: "A", turn: turn, onVisibility: func() {
		if posts.Load() >= 1 && toB.CompareAndSwap(false, true) {
			ddbFailing.Store(false)
			turn.Store("B")
		}
	}})
	b := f.task(cfg, srv.URL, "B", turnSQS{SQSAPI: f.aws.SQS, name: "B", turn: turn, onVisibility: func() {
		if posts.Load() >= 2 && toA.CompareAndSwap(false, true) {
			h.check(f.redis.Client().FlushAll(context.Background()).Err())
			flushed.Store(true)
			turn.Store("A")
		}
	}})
	m := f.newMessage("creator-a", "one message, two tasks")
	f.enqueue(m)

	stop, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range []*scraper.Consumer{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); c.Run(stop, context.Background()) }()
	}
	ok := wait.Until(120*time.Second*runUntilSlack, 50*time.Millisecond, func() bool {
		select {
		case <-committed:
			return f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	cancel()
	wg.Wait()
	h.fatalIfAny(t)
	if ddbRefused.Load() == 0 || !flushed.Load() || posts.Load() < 2 {
		t.Fatalf("harness: %d mark store writes refused, Redis emptied %t, %d send requests\n%s", ddbRefused.Load(), flushed.Load(), posts.Load(), f.logs)
	}
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 || len(f.dlq()) != 0 {
		t.Fatalf("ok %t: the fan has %q (%d send requests), %d dead-lettered; the scraper's word:\n%s",
			ok, got, posts.Load(), len(f.dlq()), linesWith(f.logs.String(), "mark store", "Redis lost", "sending", "unresolved", "not sent", "dead-letter", "may still land", "502", "released"))
	}
}
