//go:build reviewfindings

package scraper_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/huntaze/message-pipeline/scraper"
)

// putFailingDDB is the mark store's DynamoDB refusing every write
// (PutItem) while failing is set (throttled past the SDK's retries, or
// unreachable); reads answer.
type putFailingDDB struct {
	scraper.DynamoDBAPI
	failing *atomic.Bool
	refused *atomic.Int64
}

func (d putFailingDDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if d.failing.Load() {
		d.refused.Add(1)
		return nil, errors.New("ProvisionedThroughputExceededException: the level of configured provisioned throughput for the table was exceeded")
	}
	return d.DynamoDBAPI.PutItem(ctx, in, o...)
}

// TestRev22OAAnsweredProofLostWhenTheMarkStoreRefusesItsPut:
//
// Promise (c): outages (Redis refusing writes, the mark store's DynamoDB
// refusing writes) never put a message in a DLQ; (a): a message the site
// answered 2xx is settled sent, never lost to a guess.
//
// Fault: the scenario of the fixed review 22 N B test (two messages to one
// fan; from the second message's send request Redis refuses writes,
// maxmemory 1 noeviction, for 3 s; the site answers that send 200; the
// fan then replies three times and the chat, showing its latest 3
// messages, scrolls the click's anchor out of view), except that the mark
// store's DynamoDB refuses writes (PutItem) for those same 3 s instead of
// one read. Both stores are back 3 s later; nothing else fails.
//
// Why: the 2xx's proof (Mark.Answered) lives only in process memory
// (click.answered, processor_marks.go:31-37) until keepMark writes it.
// answeredUnsettled (processor_lastsent.go:52-60) tries Redis, which
// refuses (the same OOM that refused the last-sent record), and keepMark
// (processor_marks.go:71-73) tries the mark store once, which refuses
// too: it only logs "attempt mark ... not written to the mark store:
// only Redis holds it" (false: Redis holds only the pre-click mark) and
// the consumer releases the message. The proof is gone: the next
// processing's answeredSent (processor_lastsent.go:69-84) finds neither
// an Answered Redis mark nor a stored item and recover
// (processor_readback.go:37) reads the chat back with the pre-click mark:
// "no longer shown" -> undecided -> fail(ClassOutcomeUnknown), counted,
// and after MaxFailures the sent message is dead-lettered (a redrive
// sends it twice). Two outages that each the design waits out, overlapping
// for one write, lose the only proof.
//
// Suggested fix: never let a message go with an Answered proof held only
// in memory: when keepMark cannot write an Answered mark, retry it (with
// backoff, within the message's visibility, heartbeating) and/or keep
// the processing and retry settleSent in-process until Redis or the mark
// store takes it; additionally keep a per-task in-memory set of answered
// message ids consulted by answeredSent so that a redelivery to the same
// task settles it from memory.
func TestRev22OAAnsweredProofLostWhenTheMarkStoreRefusesItsPut(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	f := setup(t, cfg)
	var ddbFailing atomic.Bool
	var ddbRefused atomic.Int64
	f.marks = scraper.NewDynamoMarks(putFailingDDB{DynamoDBAPI: f.ddbCalls, failing: &ddbFailing, refused: &ddbRefused}, attemptsTable, time.Hour, time.Now)
	admin := f.redis.Client()
	ctx := context.Background()
	var harnessErr atomic.Value
	check := func(err error) {
		if err != nil {
			harnessErr.Store(err)
		}
	}
	var sends atomic.Int64
	var fanReplied atomic.Bool
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				if sends.Add(1) == 2 {
					check(admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
					check(admin.ConfigSet(ctx, "maxmemory", "1").Err())
					ddbFailing.Store(true)
					origin.ServeHTTP(w, r)
					fanReplied.Store(true)
					time.AfterFunc(3*time.Second, func() {
						check(admin.ConfigSet(ctx, "maxmemory", "0").Err())
						ddbFailing.Store(false)
					})
					return
				}
				origin.ServeHTTP(w, r)
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				serveRewritten(w, r, origin, func(page string) string { return chatAsAppShowsIt(page, fanReplied.Load()) })
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	texts := []string{"hi there", "did you see my pic?"}
	for _, text := range texts {
		f.enqueue(f.newMessage("creator-a", text))
	}
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	if err := harnessErr.Load(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	if sends.Load() < 2 || ddbRefused.Load() == 0 {
		t.Fatalf("harness: %d send requests, %d mark store writes refused", sends.Load(), ddbRefused.Load())
	}
	got := f.site.Texts("creator-a")
	d := f.dlq()
	var reasons []string
	for _, m := range d {
		reasons = append(reasons, aws.ToString(m.MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if !ok || strings.Join(got, ",") != strings.Join(texts, ",") || len(d) != 0 {
		t.Fatalf("ok %t: the site has %q (send requests %d); %d dead-lettered: %q; mark store writes refused %d; the scraper's word:\n%s", ok, got, f.site.SendRequests(), len(d), reasons, ddbRefused.Load(),
			linesWith(f.logs.String(), "not recorded", "no longer shown", "dead-letter", "answered-sent", "kept in the mark store"))
	}
}
