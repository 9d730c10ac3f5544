package scraper_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
	scrapersetup "github.com/huntaze/message-pipeline/scraper/setup"
	"github.com/huntaze/message-pipeline/test/browserharness"
	"github.com/huntaze/message-pipeline/test/harness"
	"github.com/huntaze/message-pipeline/test/wait"
)

// fixture is one test's scraper with everything it talks to of its own: a
// fake site, Redis, fauxqs, dynalite and a browser on free ports. The tests
// built on it run in parallel (t.Parallel): they share nothing, and they
// spend most of their time waiting on scaled timeouts, backoffs and
// read-back settles, not on the CPU. Those whose assertion depends on a
// short real-time deadline being met (a 1 s heartbeat, sends quicker than a
// gate) stay serial, alone in the package.
type fixture struct {
	t        *testing.T
	site     *fakesite.Site
	aws      *harness.Fauxqs
	redis    *harness.Redis
	ddb      *harness.Dynalite
	ddbCalls *countingDDB
	marks    *scraper.DynamoMarks
	queues   emulator.System
	ledger   *scraper.Ledger
	proc     *scraper.Processor
	consumer *scraper.Consumer
	logs     *harness.Buffer
	emf      *harness.Buffer
	sessions *sessionStore
	results  *scraper.Results
	// timeouts is the sender's timeouts, kept by behind's new sender.
	timeouts onlyfans.Timeouts

	compressed *harness.CompressedVisibility
}

// shortHorizon is testConfig with a late-commit horizon of 4 s, for tests
// whose gateway 5xx (held to the horizon like no answer) never commit late.
func shortHorizon() scraper.Config {
	c := testConfig()
	c.LateCommitHorizon = 4 * time.Second
	return c
}

func testConfig() scraper.Config {
	// The production defaults (complete), scaled and tightened for tests.
	c := scrapersetup.Processor(scrapersettings.Defaults())
	c.MaxFailures, c.BackoffBase, c.BackoffFactor, c.ServerAttempts, c.ServerBackoff = 3, time.Second, 2, 3, 10*time.Millisecond
	c.RateLimitDefault, c.BreakerFailures, c.BreakerOpenFor, c.OutageBackoff = 0, 100, time.Second, time.Second
	// Scaled: the lagging chat list of the review test shows a commit 2 s late.
	c.ReadBackSettle = 2500 * time.Millisecond
	// Scaled: a send request with no answer may land 15 s after its click
	// (the hanging origin of the review test commits one 12 s late).
	c.LateCommitHorizon = 15 * time.Second
	// Scaled: one fan's chat counts as broken once seen so for 3 s.
	c.ChatFaultPatience = 3 * time.Second
	// Scaled: a chat showing nothing after an unknown first click is
	// taken for not sent once seen so for 3 s.
	c.EmptyChatPatience = 3 * time.Second
	// Scaled: a refused 2xx proof is tried again for 5 s.
	c.AnsweredProofPatience = 5 * time.Second
	return c
}

// attemptsTable is the mark store's table in the tests' dynalite.
const attemptsTable = "attempts"

// openGate admits far more than any test sends.
var openGate = ratelimit.Config{Limit: 1000, Window: time.Second, KeyPrefix: "gate"}

func setup(t *testing.T, cfg scraper.Config) *fixture {
	t.Helper()
	return setupWithGate(t, cfg, openGate)
}

// fastSender is the sender's timeouts in most tests.
var fastSender = onlyfans.Timeouts{Navigation: 5 * time.Second, Action: 3 * time.Second, Response: 1500 * time.Millisecond}

func setupWithGate(t *testing.T, cfg scraper.Config, gateCfg ratelimit.Config) *fixture {
	t.Helper()
	return setupWith(t, cfg, gateCfg, fastSender)
}

func setupWith(t *testing.T, cfg scraper.Config, gateCfg ratelimit.Config, timeouts onlyfans.Timeouts) *fixture {
	t.Helper()
	f := &fixture{t: t, site: fakesite.Start(t), aws: harness.StartFauxqs(t), redis: harness.StartRedis(t), ddb: harness.StartDynalite(t), logs: &harness.Buffer{}, emf: &harness.Buffer{}, timeouts: timeouts}
	f.ddb.CreateTable(t, attemptsTable, scraper.AttemptsKeyAttribute)
	f.ddbCalls = &countingDDB{DynamoDBAPI: f.ddb.DynamoDB, n: map[string]int{}}
	f.marks = scraper.NewDynamoMarks(f.ddbCalls, attemptsTable, time.Hour, time.Now)
	f.queues = f.aws.CreateQueues(t, "test")
	if _, err := f.aws.S3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("results")}); err != nil {
		t.Fatal(err)
	}
	f.sessions = &sessionStore{creds: scraper.StaticCredentials{}}
	for _, c := range []string{"creator-a", "creator-b"} {
		f.sessions.set(c, f.site.AddCreator(c))
	}
	opts := browser.Options{DriverDir: harness.DriverDir(t)}
	if err := opts.Check(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	sender := newSender(t, onlyfans.Config{BaseURL: f.site.URL, Browser: opts, RecycleAfter: 20, Traces: true,
		Timeouts: timeouts})
	t.Cleanup(func() { _ = sender.Close() })
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	f.ledger = scraper.NewLedger(f.redis.Client(), "scraper:test", time.Hour)
	// This Redis has served the ledger all along (nothing lost before).
	if err := f.ledger.PrimeEpoch(context.Background()); err != nil {
		t.Fatal(err)
	}
	gate, err := ratelimit.NewShared(f.redis.Client(), gateWith(cfg, gateCfg), scraper.NewDynamoGateServers(f.ddb.DynamoDB, attemptsTable))
	if err != nil {
		t.Fatal(err)
	}
	harness.PrimeFence(t, f.redis.Client(), gateCfg.FenceKey())
	defaults := scrapersettings.Defaults()
	f.results, err = scraper.NewResults(f.aws.S3, scraper.ResultsConfig{Bucket: "results", Owner: "test", FlushEvery: defaults.ResultsFlushEvery, MaxRecords: defaults.ResultsMaxRecords, MaxPending: defaults.ResultsMaxPending}, log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.proc, err = scraper.NewProcessor(cfg, sender, gate, f.sessions, f.ledger, f.marks, f.results, log,
		metrics.New(f.emf, map[string]string{"Service": "scraper"}, time.Now), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.compressed = &harness.CompressedVisibility{Client: f.aws.SQS}
	f.consumer = scraper.NewConsumer(f.consumerConfig(), f.aws.SQS, f.ledger, f.proc, log)
	return f
}

// gateWith is gateCfg as the scraper's wiring makes the send gate
// (settings.Gate): holds up to the processor's late-commit horizon, and
// charges each approval that far ahead until its send ends.
func gateWith(cfg scraper.Config, gateCfg ratelimit.Config) ratelimit.Config {
	if gateCfg.MaxHold == 0 {
		gateCfg.MaxHold, gateCfg.ChargeAhead = cfg.LateCommitHorizon, cfg.LateCommitHorizon
	}
	return gateCfg
}

// sessionStore is a credential store the test can change while the
// scraper runs (an operator renewing a creator's session).
type sessionStore struct {
	mu    sync.Mutex
	creds scraper.StaticCredentials
}

func (s *sessionStore) set(creator, cookie string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[creator] = onlyfans.Credentials{SessionCookie: cookie}
}

func (s *sessionStore) Get(ctx context.Context, creator string) (onlyfans.Credentials, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creds.Get(ctx, creator)
}

func (f *fixture) consumerConfig() scraper.ConsumerConfig {
	return scraper.ConsumerConfig{QueueURL: f.queues.Workflows.URL, DeadLetterURL: f.queues.Workflows.DLQURL, Wait: time.Second, MaxGroups: 4, ErrorBackoff: 100 * time.Millisecond,
		Heartbeat: scrapersettings.Defaults().Heartbeat}
}

// newSender is onlyfans.New of cfg with the scraper's default settings
// (scraper/settings) for the kept pages, and for the profile unless cfg names
// one.
func newSender(t *testing.T, cfg onlyfans.Config) *onlyfans.Sender {
	t.Helper()
	d, err := scrapersetup.Sender(scrapersettings.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Profile.Name == "" {
		cfg.Profile = browserharness.SiteProfile()
	}
	cfg.KeepContexts = d.KeepContexts
	s, err := onlyfans.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// compress makes the consumer apply every visibility change as 0 (and
// record it), so that hundreds of receives of an outage take seconds.
func (f *fixture) compress() {
	f.consumer = scraper.NewConsumer(f.consumerConfig(), f.compressed, f.ledger, f.proc, slog.New(slog.NewJSONHandler(f.logs, nil)))
}

func (f *fixture) newMessage(creator, text string) message.Message {
	m, err := message.New("user-"+creator, "fan-1", text, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	m.CreatorID = creator
	return m
}

// enqueue puts messages on the FIFO queue as the rate limiter does.
func (f *fixture) enqueue(msgs ...message.Message) {
	f.t.Helper()
	for _, m := range msgs {
		body, _ := m.Marshal()
		dedup, _ := m.DeduplicationID()
		if _, err := f.aws.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{
			QueueUrl: aws.String(f.queues.Workflows.URL), MessageBody: aws.String(string(body)), MessageAttributes: m.Attributes().SQS(),
			MessageGroupId: aws.String(m.CreatorKey()), MessageDeduplicationId: aws.String(dedup),
		}); err != nil {
			f.t.Fatal(err)
		}
	}
}

// receiveTogether queues texts of one creator on a double that hands a
// FIFO group out as AWS does (all of it in one receive) and receives them.
func (f *fixture) receiveTogether(creator string, texts ...string) (*harness.AWSShapeFIFO, []string, *sqs.ReceiveMessageOutput) {
	f.t.Helper()
	q := harness.NewAWSShapeFIFO(f.aws.SQS, f.queues.Workflows.URL)
	var bodies []string
	for _, text := range texts {
		m := f.newMessage(creator, text)
		body, _ := m.Marshal()
		bodies = append(bodies, string(body))
		if _, err := q.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(string(body)),
			MessageGroupId: aws.String(creator), MessageDeduplicationId: aws.String(m.MessageID)}); err != nil {
			f.t.Fatal(err)
		}
	}
	r, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10})
	if err != nil || len(r.Messages) != len(texts) {
		f.t.Fatalf("receive: %d messages, %v", len(r.Messages), err)
	}
	return q, bodies, r
}

// runUntil runs the consumer until cond holds or the timeout passes.
// Every cond here is what the test expects to happen, so the timeout is
// only how long a failing run takes: it is stretched (runUntilSlack) for a
// loaded machine under -race, where a browser's start and a read-back's
// settle take several times their usual time.
func (f *fixture) runUntil(timeout time.Duration, cond func() bool) bool {
	f.t.Helper()
	timeout *= runUntilSlack
	stop, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.consumer.Run(stop, context.Background()); close(done) }()
	ok := wait.Until(timeout, 50*time.Millisecond, cond)
	cancel()
	<-done
	return ok
}

// runUntilSlack stretches runUntil's timeouts (see there).
const runUntilSlack = 3

func (f *fixture) queueCount(url string) int { return harness.QueueDepth(f.aws.SQS, url) }

// failureReasons is each dead-lettered message's failure_reason.
func failureReasons(dlq []sqstypes.Message) []string {
	var out []string
	for _, d := range dlq {
		out = append(out, aws.ToString(d.MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	return out
}

// sentTo is the texts the site took for fan, in order.
func (f *fixture) sentTo(fan string) []string {
	var out []string
	for _, s := range f.site.Sent() {
		if s.Fan == fan {
			out = append(out, s.Text)
		}
	}
	return out
}

func (f *fixture) dlq() []sqstypes.Message {
	var out []sqstypes.Message
	for range 20 {
		r, err := f.aws.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.queues.Workflows.DLQURL), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			f.t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			out = append(out, m)
			_, _ = f.aws.SQS.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(f.queues.Workflows.DLQURL), ReceiptHandle: m.ReceiptHandle})
		}
	}
	return out
}

func TestSendsInOrderPerCreatorAndDeletesOnSuccess(t *testing.T) {
	t.Parallel()
	// GIVEN 3 messages for each of two creators, and six 5xx answers after
	// the first two sends: whichever second messages get them wait, held
	// to the late-commit horizon (a 500's origin may still commit: review
	// 22 F), in the middle of their groups
	f := setup(t, testConfig())
	var a, b []message.Message
	for i := range 3 {
		a = append(a, f.newMessage("creator-a", fmt.Sprint("a", i)))
		b = append(b, f.newMessage("creator-b", fmt.Sprint("b", i)))
	}
	f.enqueue(a[0], b[0], a[1], b[1], a[2], b[2])
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{}, fakesite.Fault{Status: 500}, fakesite.Fault{Status: 500}, fakesite.Fault{Status: 500},
		fakesite.Fault{Status: 500}, fakesite.Fault{Status: 500}, fakesite.Fault{Status: 500})

	// WHEN the scraper runs
	// (every 5xx is read back before the next click: page loads that take
	// long under -race on a busy machine; the test asserts counts, not time)
	ok := f.runUntil(90*time.Second, func() bool { return len(f.site.Sent()) == 6 && f.queueCount(f.queues.Workflows.URL) == 0 })

	// THEN everything was sent once, each creator in order, and the queue is empty
	if !ok {
		t.Fatalf("not done: sent %v, queue %d\n%s", f.site.Sent(), f.queueCount(f.queues.Workflows.URL), f.logs)
	}
	for _, c := range []string{"a", "b"} {
		if got := strings.Join(f.site.Texts("creator-"+c), ","); got != c+"0,"+c+"1,"+c+"2" {
			t.Errorf("creator %s order: %s", c, got)
		}
	}
	if d := f.site.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicates: %v", d)
	}
	if !strings.Contains(f.logs.String(), `site answered 500; not in the chat yet, and the request may still land`) {
		t.Fatalf("the injected 500 was not held to the late-commit horizon:\n%s", f.logs)
	}
	// AND each send's accepted → sent wait is a metric (these messages
	// carry no limiter approval time: classed as queued) and a log field
	if strings.Count(f.emf.String(), `"delivery_latency_ms"`) < 6 || !strings.Contains(f.emf.String(), `"Backlog":"queued"`) || !strings.Contains(f.logs.String(), `"delivery_latency_ms":`) {
		t.Fatalf("no delivery latency:\n%s", f.emf)
	}
	// AND failures are counted in total (the success rate's input) and by class
	if !strings.Contains(f.emf.String(), `"ErrorClass":"site_unavailable"`) {
		t.Fatalf("no failure by class:\n%s", f.emf)
	}
}

func TestLaterMessagesOfAFailedGroupWaitWithItAndAreNeverAttempted(t *testing.T) {
	t.Parallel()
	// GIVEN a batch holding three messages of one group, as AWS hands them out
	f := setup(t, testConfig())
	q, bodies, r := f.receiveTogether("creator-a", "m0", "m1", "m2")
	consumer := scraper.NewConsumer(scraper.ConsumerConfig{QueueURL: q.URL, DeadLetterURL: f.queues.Workflows.DLQURL, MaxGroups: 1, Heartbeat: scrapersettings.Defaults().Heartbeat}, q, f.ledger, f.proc, slog.New(slog.NewJSONHandler(f.logs, nil)))
	// AND the site answers the 2nd message 429, Retry-After 30 s
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{Status: 429, RetryAfter: "30"})

	// WHEN the batch is processed
	consumer.ProcessBatch(context.Background(), context.Background(), r.Messages)

	// THEN m0 is sent and gone, m1 was attempted, m2 was never attempted
	if got := f.site.Texts("creator-a"); len(got) != 1 || got[0] != "m0" || f.site.SendRequests() != 2 || q.Len() != 2 {
		t.Fatalf("sent %v after %d requests; %d left in the queue", got, f.site.SendRequests(), q.Len())
	}
	// AND both wait (m2 does not become visible before m1)
	if q.Visible(bodies[1]) || q.Visible(bodies[2]) {
		t.Fatalf("visible after the batch: m1 %t, m2 %t", q.Visible(bodies[1]), q.Visible(bodies[2]))
	}
	if !strings.Contains(f.logs.String(), `"msg":"message held behind an earlier one of its group","sqs_message_id":"`+aws.ToString(r.Messages[2].MessageId)) {
		t.Fatalf("m2 not held:\n%s", f.logs)
	}
}

func TestA429StormOfOverAHundredReceivesIsDeliveredAndNeverDeadLettered(t *testing.T) {
	t.Parallel()
	// GIVEN a site answering 429 to the first stormFaults send attempts
	// (115; 210 with -tags long), and every visibility change applied as 0
	// (recorded) so the storm takes seconds
	f := setup(t, testConfig())
	f.compress()
	faults := make([]fakesite.Fault, stormFaults)
	for i := range faults {
		faults[i] = fakesite.Fault{Status: 429}
	}
	f.site.InjectFaults(faults...)
	m := f.newMessage("creator-a", "patience")
	f.enqueue(m)
	// WHEN the scraper runs through the storm
	// The bound is generous: 210 page loads under -race on a busy 2-core
	// machine take about two minutes; the test asserts counts, not time.
	ok := f.runUntil(6*time.Minute, func() bool { return len(f.site.Sent()) == 1 && f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN it is sent once, never counted as a failure, never dead-lettered,
	// after more receives than the old maxReceiveCount of 100 (over 200
	// with -tags long), and its wait grew to the 15-minute cap
	st, _ := f.ledger.State(context.Background(), m.MessageID, m.CreatorKey())
	asked := f.compressed.Asked()
	if !ok || f.site.SendRequests() != stormFaults+1 || len(f.dlq()) != 0 || st.Failures != 0 || !st.Sent {
		t.Fatalf("ok %t, %d requests, ledger %+v", ok, f.site.SendRequests(), st)
	}
	if len(asked) < stormFaults-10 || asked[0] != 1 || asked[len(asked)-1] != 900 {
		t.Fatalf("%d visibility changes, first %d s, last %d s", len(asked), asked[0], asked[len(asked)-1])
	}
	t.Logf("delivered after %d receives, 0 dead-lettered", len(asked)+1)
}

func TestARedisOutageOfManyReceivesDelaysButNeverDeadLetters(t *testing.T) {
	t.Parallel()
	// GIVEN a message waiting and Redis (ledger and gate) down
	f := setup(t, testConfig())
	f.compress()
	m := f.newMessage("creator-a", "after the outage")
	f.enqueue(m)
	f.redis.Stop()
	// WHEN the scraper receives it 110 times (more than the old maxReceiveCount)
	f.runUntil(5*time.Minute, func() bool { return len(f.compressed.Asked()) >= 110 })
	// THEN nothing was sent or dead-lettered
	if len(f.compressed.Asked()) < 110 || len(f.site.Sent()) != 0 || len(f.dlq()) != 0 {
		t.Fatalf("%d receives, %d sent, DLQ %d", len(f.compressed.Asked()), len(f.site.Sent()), len(f.dlq()))
	}
	// WHEN Redis comes back (empty: the gate holds one window first)
	f.redis.Restart()
	ok := f.runUntil(30*time.Second, func() bool { return len(f.site.Sent()) == 1 && f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN it is delivered once
	if !ok || len(f.site.Sent()) != 1 {
		t.Fatalf("after the outage: ok %t, sent %d\n%s", ok, len(f.site.Sent()), f.logs)
	}
}

func TestServerErrorsTwiceThenSuccessIsOneSendWithoutFailure(t *testing.T) {
	t.Parallel()
	f := setup(t, shortHorizon())
	f.site.InjectFaults(fakesite.Fault{Status: 502}, fakesite.Fault{Status: 503})
	m := f.newMessage("creator-a", "third time lucky")
	f.enqueue(m)
	// Each gateway 5xx is held to the horizon (4 s) and read back, and the
	// fan's chat is empty (EMPTY_CHAT_PATIENCE): about 15 s of waits on a
	// quiet machine, so the bound leaves room for a busy one (cc57 timed
	// out at 15 s under load).
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	st, _ := f.ledger.State(context.Background(), m.MessageID, m.CreatorKey())
	if !ok || len(f.site.Sent()) != 1 || f.site.SendRequests() != 3 || st.Failures != 0 {
		t.Fatalf("ok %t, sent %d after %d requests, ledger %+v", ok, len(f.site.Sent()), f.site.SendRequests(), st)
	}
}

func TestClientErrorGoesToTheDLQWithItsReasonAndArtifacts(t *testing.T) {
	t.Parallel()
	f := setup(t, testConfig())
	f.site.InjectFaults(fakesite.Fault{Status: 400})
	m := f.newMessage("creator-a", "refused")
	f.enqueue(m)
	ok := f.runUntil(15*time.Second, func() bool { return f.queueCount(f.queues.Workflows.DLQURL) == 1 })
	dlq := f.dlq()
	if !ok || len(dlq) != 1 || f.queueCount(f.queues.Workflows.URL) != 0 {
		t.Fatalf("ok %t, dlq %d, queue %d", ok, len(dlq), f.queueCount(f.queues.Workflows.URL))
	}
	if reason := aws.ToString(dlq[0].MessageAttributes[scraper.AttrFailureReason].StringValue); !strings.HasPrefix(reason, "scraper: client_error: site refused the message with 400") {
		t.Fatalf("reason %q", reason)
	}
	// (the record goes out with the next flush; the captures at once)
	if err := f.results.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var recs []scraper.Record
	for _, o := range f.objects("results/") {
		got, err := f.aws.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("results"), Key: aws.String(o)})
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(got.Body)
		for {
			var rec scraper.Record
			if dec.Decode(&rec) != nil {
				break
			}
			recs = append(recs, rec)
		}
		got.Body.Close()
	}
	if len(recs) != 1 || recs[0].MessageID != m.MessageID || recs[0].Status != "dead_lettered" || recs[0].HTTPStatus != 400 || recs[0].ErrorClass != scraper.ClassClient {
		t.Fatalf("records %+v", recs)
	}
	kinds := map[string]bool{}
	for _, k := range f.objects(recs[0].Captures) {
		kinds[k[strings.LastIndexByte(k, '.')+1:]] = true
	}
	if !strings.HasPrefix(recs[0].Captures, "artifacts/creator-a/"+m.MessageID+"/") || !kinds["png"] || !kinds["html"] || !kinds["zip"] {
		t.Fatalf("captures %s: %v", recs[0].Captures, kinds)
	}
}

// objects lists the keys of the results bucket under prefix.
func (f *fixture) objects(prefix string) []string {
	f.t.Helper()
	out, err := f.aws.S3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("results"), Prefix: aws.String(prefix)})
	if err != nil {
		f.t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func TestRepeatedFailuresBackOffThenDeadLetterAndSurviveRedelivery(t *testing.T) {
	t.Parallel()
	// GIVEN a site whose composer refuses this message's text (its send
	// button stays disabled: a failure of this message, the page works;
	// a page without its composer is an outage instead)
	cfg := testConfig()
	cfg.MaxFailures = 2
	cfg.BackoffBase = time.Second
	f := setupWith(t, cfg, openGate, onlyfans.Timeouts{Navigation: 5 * time.Second, Action: time.Second, Response: 1500 * time.Millisecond})
	f.site.RejectTexts("doomed")
	m := f.newMessage("creator-a", "doomed")
	f.enqueue(m)
	// WHEN the scraper runs across redeliveries
	ok := f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.DLQURL) == 1 })
	// THEN the second failure (counted across receives in Redis) moved it
	// to the DLQ with its reason, and nothing was ever clicked
	st, _ := f.ledger.State(context.Background(), m.MessageID, m.CreatorKey())
	if !ok || st.Failures != 2 || f.site.SendRequests() != 0 || f.queueCount(f.queues.Workflows.URL) != 0 {
		t.Fatalf("ok %t, ledger %+v, requests %d", ok, st, f.site.SendRequests())
	}
	if reason := aws.ToString(f.dlq()[0].MessageAttributes[scraper.AttrFailureReason].StringValue); !strings.Contains(reason, "timeout: ") || !strings.Contains(reason, "failure 2 of 2") {
		t.Fatalf("reason %q", reason)
	}
}

func TestBackoffIsExponentialAndCapped(t *testing.T) {
	c := scraper.Config{BackoffBase: 30 * time.Second, BackoffFactor: 2}
	for n, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 4: 4 * time.Minute, 20: 12 * time.Hour, 5000: 12 * time.Hour} {
		if got := c.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestCircuitBreakerOpensReleasesWithoutSendingAndRecovers(t *testing.T) {
	t.Parallel()
	// GIVEN a breaker that opens after 2 consecutive 5xx, for 3 s
	cfg := testConfig()
	cfg.ServerAttempts = 1
	cfg.BreakerFailures = 2
	cfg.BreakerOpenFor = 3 * time.Second // longer than the 1 s failure backoff: retries find it open
	cfg.MaxFailures = 100
	f := setup(t, cfg)
	f.site.InjectFaults(fakesite.Fault{Status: 500}, fakesite.Fault{Status: 500})
	a, b := f.newMessage("creator-a", "x"), f.newMessage("creator-b", "y")
	f.enqueue(a, b)
	// WHEN both fail and the scraper keeps running
	ok := f.runUntil(20*time.Second, func() bool { return len(f.site.Sent()) == 2 && f.queueCount(f.queues.Workflows.URL) == 0 })
	logs := f.logs.String()
	// THEN the breaker opened, messages were released without a send while
	// open, and a half-open probe closed it again
	if !ok {
		t.Fatalf("not recovered:\n%s", logs)
	}
	for _, want := range []string{`"from":"closed","to":"open"`, `"from":"open","to":"half-open"`, `"from":"half-open","to":"closed"`, `"error_class":"circuit_open"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
	if !strings.Contains(f.emf.String(), `"circuit_state":2`) {
		t.Errorf("circuit_state metric never reported open")
	}
}

func TestTimeoutKeepsTheAttemptAndTheNextTryChecksTheChat(t *testing.T) {
	t.Parallel()
	// GIVEN the fan already has "Thank you babe" from this creator, and the
	// same text again, which the site records but answers too late (the
	// scraper times out after its click)
	f := setup(t, testConfig())
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{RecordThenDelay: true, Delay: 3 * time.Second})
	f.enqueue(f.newMessage("creator-a", "Thank you babe"), f.newMessage("creator-a", "Thank you babe"))
	// WHEN the scraper retries after the failure backoff
	ok := f.runUntil(20*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN it counted one more identical text than before its click, so it
	// did not send the second message twice
	if !ok || len(f.site.Sent()) != 2 || f.site.SendRequests() != 2 {
		t.Fatalf("ok %t, sent %d, requests %d\n%s", ok, len(f.site.Sent()), f.site.SendRequests(), f.logs)
	}
	if !strings.Contains(f.logs.String(), "(2 identical texts, 1 before the click)") {
		t.Fatalf("no chat check:\n%s", f.logs)
	}
}

func TestAnIdenticalTextAfterAPreClickTimeoutIsSentNotTakenForTheEarlierOne(t *testing.T) {
	t.Parallel()
	// GIVEN the fan already has "Thank you babe" from this creator, and the
	// same text again whose first try times out opening the chat (before
	// any click)
	f := setupWith(t, testConfig(), openGate, onlyfans.Timeouts{Navigation: time.Second, Action: 3 * time.Second, Response: 1500 * time.Millisecond})
	f.enqueue(f.newMessage("creator-a", "Thank you babe"))
	if !f.runUntil(20*time.Second, func() bool { return len(f.site.Sent()) == 1 && f.queueCount(f.queues.Workflows.URL) == 0 }) {
		t.Fatalf("first message not sent\n%s", f.logs)
	}
	// (twice: a single-page app's switch, then the document loaded
	// instead, are both slow)
	f.site.SlowChatPages(2, 3*time.Second)
	f.enqueue(f.newMessage("creator-a", "Thank you babe"))
	// WHEN the scraper retries after the failure backoff
	ok := f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has the text twice: the earlier message was not taken
	// for this one
	if got := f.site.Texts("creator-a"); !ok || len(got) != 2 {
		t.Fatalf("ok %t, site has %q\n%s", ok, got, f.logs)
	}
	if !strings.Contains(f.logs.String(), `"error_class":"site_unavailable"`) || !strings.Contains(f.logs.String(), "open chat") {
		t.Fatalf("the first try did not time out before the click:\n%s", f.logs)
	}
}

// Serial: its 1 s heartbeat is meant to keep up, which parallel browsers
// could delay.
func TestASlowSitePastTheVisibilityWithTwoConsumersSendsEachMessageOnce(t *testing.T) {
	// GIVEN a queue whose visibility is 1 s, two consumers (two tasks) on it
	// with a 1 s heartbeat, and a site that takes 3 s to answer each of the
	// first three sends (it records them when it answers)
	f := setupWith(t, testConfig(), openGate, onlyfans.Timeouts{Navigation: 5 * time.Second, Action: 3 * time.Second, Response: 10 * time.Second})
	if _, err := f.aws.SQS.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(f.queues.Workflows.URL), Attributes: map[string]string{"VisibilityTimeout": "1"},
	}); err != nil {
		t.Fatal(err)
	}
	f.site.InjectFaults(fakesite.Fault{Delay: 3 * time.Second}, fakesite.Fault{Delay: 3 * time.Second}, fakesite.Fault{Delay: 3 * time.Second})
	for i := range 3 {
		f.enqueue(f.newMessage("creator-a", "same words"), f.newMessage("creator-b", fmt.Sprint("b", i)))
	}
	cfg := f.consumerConfig()
	cfg.Heartbeat = time.Second
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	beats := &heartbeatCountingSQS{SQSAPI: f.aws.SQS}
	consumers := []*scraper.Consumer{
		scraper.NewConsumer(cfg, beats, f.ledger, f.proc, log.With("task", "one")),
		scraper.NewConsumer(cfg, beats, f.ledger, f.proc, log.With("task", "two")),
	}
	// WHEN both consume until the queue is empty
	stop, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range consumers {
		wg.Add(1)
		go func() { defer wg.Done(); c.Run(stop, context.Background()) }()
	}
	wait.Until(60*time.Second, 50*time.Millisecond, func() bool {
		return len(f.site.Sent()) >= 6 && f.queueCount(f.queues.Workflows.URL) == 0
	})
	cancel()
	wg.Wait()
	// THEN every message reached the site exactly once, in order per
	// creator, from exactly one click each
	a, b := f.site.Texts("creator-a"), f.site.Texts("creator-b")
	if strings.Join(a, ",") != "same words,same words,same words" || strings.Join(b, ",") != "b0,b1,b2" || f.site.SendRequests() != 6 {
		t.Fatalf("creator-a %q, creator-b %q, %d send requests\n%s", a, b, f.site.SendRequests(), f.logs)
	}
	// AND the heartbeat gave the messages being worked on more visibility
	// (SQS took it). Whether it always kept up is timing: on a loaded
	// machine a beat can come after the 1 s lapsed (a clean-clone run at
	// load 20 saw it once); the claim then keeps the other task off, which
	// the six send requests above prove.
	if n := beats.extended.Load(); n == 0 {
		t.Fatalf("no heartbeat extended a message's visibility\n%s", f.logs)
	}
	if strings.Contains(f.logs.String(), "claimed by another consumer") {
		t.Logf("a message lapsed to the other task, whose claim check held it")
	}
}

// heartbeatCountingSQS counts the visibility extensions SQS took from
// heartbeats (ChangeMessageVisibilityBatch entries that succeeded).
type heartbeatCountingSQS struct {
	scraper.SQSAPI
	extended atomic.Int64
}

func (s *heartbeatCountingSQS) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	out, err := s.SQSAPI.ChangeMessageVisibilityBatch(ctx, in, o...)
	if err == nil {
		s.extended.Add(int64(len(out.Successful)))
	}
	return out, err
}

func TestAMessageClaimedByAnotherTaskWaitsForTheClaimWithItsGroup(t *testing.T) {
	t.Parallel()
	// GIVEN two messages of one creator received together, the first of
	// which another task has claimed for 30 s (its visibility lapsed there)
	f := setup(t, testConfig())
	q, bodies, r := f.receiveTogether("creator-a", "c0", "c1")
	if held, err := f.ledger.Claim(context.Background(), aws.ToString(r.Messages[0].MessageId), "other-task", 30*time.Second); err != nil || held != 0 {
		t.Fatalf("claim: %s, %v", held, err)
	}
	consumer := scraper.NewConsumer(scraper.ConsumerConfig{QueueURL: q.URL, DeadLetterURL: f.queues.Workflows.DLQURL, MaxGroups: 1, Owner: "this-task", Heartbeat: scrapersettings.Defaults().Heartbeat}, q, f.ledger, f.proc, slog.New(slog.NewJSONHandler(f.logs, nil)))
	// WHEN this task processes the batch
	consumer.ProcessBatch(context.Background(), context.Background(), r.Messages)
	// THEN it sent nothing, and both messages wait (neither is visible)
	if f.site.SendRequests() != 0 || q.Len() != 2 || q.Visible(bodies[0]) || q.Visible(bodies[1]) {
		t.Fatalf("%d send requests, %d queued, visible %t %t\n%s", f.site.SendRequests(), q.Len(), q.Visible(bodies[0]), q.Visible(bodies[1]), f.logs)
	}
	if !strings.Contains(f.logs.String(), "message claimed by another consumer") {
		t.Fatalf("no claim conflict logged:\n%s", f.logs)
	}
}

// Serial: it asserts the gate held a message, which needs the first two
// sends quicker than the gate's window; the window is long (20 s) so that
// a loaded machine's slow sends still meet it (2 s failed under a load
// average of 16 on 2 cores).
func TestSendGateKeepsTheSiteUnderTheLimitWhateverTheQueueing(t *testing.T) {
	// GIVEN 4 messages of one creator already in the FIFO queue (as after a
	// scraper outage) and a gate of 2 sends per 20 s
	const window = 20 * time.Second
	f := setupWithGate(t, testConfig(), ratelimit.Config{Limit: 2, Window: window, Margin: 200 * time.Millisecond, KeyPrefix: "gate"})
	for i := range 4 {
		f.enqueue(f.newMessage("creator-a", fmt.Sprint("g", i)))
	}
	// WHEN the scraper drains them
	ok := f.runUntil(60*time.Second, func() bool { return len(f.site.Sent()) == 4 && f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN all are delivered in order, and no window at the site held more than 2
	if !ok {
		t.Fatalf("not drained: %v", f.site.Texts("creator-a"))
	}
	if got := f.site.MaxInWindow(window)["creator-a"]; got > 2 {
		t.Fatalf("%d sends in one %s window at the site", got, window)
	}
	if got := strings.Join(f.site.Texts("creator-a"), ","); got != "g0,g1,g2,g3" {
		t.Fatalf("order %s", got)
	}
	if !strings.Contains(f.logs.String(), `"error_class":"rate_gate"`) {
		t.Fatal("the gate never held a message")
	}
}

func TestRedisEmptiedRightAfterTheLastAllowedSendKeepsTheSiteUnderTheLimit(t *testing.T) {
	t.Parallel()
	// GIVEN 8 messages of one creator queued, a gate of 3 sends per 2 s, and
	// Redis emptied the instant the site records the 3rd send
	f := setupWithGate(t, testConfig(), ratelimit.Config{Limit: 3, Window: 2 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"})
	for i := range 8 {
		f.enqueue(f.newMessage("creator-a", fmt.Sprint("e", i)))
	}
	flusher := f.redis.Client()
	var flushed sync.Once
	f.site.OnSent(func(fakesite.Sent) {
		if len(f.site.Sent()) == 3 {
			flushed.Do(func() {
				if err := flusher.FlushAll(context.Background()).Err(); err != nil {
					t.Error(err)
				}
			})
		}
	})
	// WHEN the scraper drains them
	ok := f.runUntil(60*time.Second, func() bool { return len(f.site.Sent()) == 8 && f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN all are delivered, in order, and no 2 s window at the site held
	// more than 3: the gate noticed the lost state and held a window
	if !ok {
		t.Fatalf("not drained: %v\n%s", f.site.Texts("creator-a"), f.logs)
	}
	if got := f.site.MaxInWindow(2 * time.Second)["creator-a"]; got > 3 {
		t.Fatalf("%d sends in one 2 s window at the site after Redis lost its state", got)
	}
	if got := strings.Join(f.site.Texts("creator-a"), ","); got != "e0,e1,e2,e3,e4,e5,e6,e7" {
		t.Fatalf("order %s", got)
	}
	if !strings.Contains(f.logs.String(), "gate fenced") {
		t.Fatal("the gate never reported the fence")
	}
}

func TestARejectedSessionPausesTheCreatorUncountedAndResumesWhenTheSessionChanges(t *testing.T) {
	t.Parallel()
	// GIVEN creator-a's stored session is one the site rejects, two of its
	// messages queued, and one of creator-b's
	f := setup(t, testConfig())
	f.compress()
	f.sessions.set("creator-a", "expired-session")
	a0, a1 := f.newMessage("creator-a", "a0"), f.newMessage("creator-a", "a1")
	f.enqueue(a0, a1, f.newMessage("creator-b", "b0"))
	// WHEN the scraper runs for 30 receives of creator-a's messages
	f.runUntil(60*time.Second, func() bool { return len(f.compressed.Asked()) >= 30 && len(f.site.Sent()) == 1 })
	// THEN creator-b was served, creator-a's messages wait uncounted (no
	// failure, nothing dead-lettered), the site saw one rejected page load,
	// and session_invalid was emitted for creator-a
	st, _ := f.ledger.State(context.Background(), a0.MessageID, "creator-a")
	if got := f.site.Texts("creator-b"); len(got) != 1 || len(f.site.Texts("creator-a")) != 0 || st.Failures != 0 || len(f.dlq()) != 0 || st.PausedSession == "" {
		t.Fatalf("creator-b %v, creator-a %v, ledger %+v\n%s", got, f.site.Texts("creator-a"), st, f.logs)
	}
	if n := strings.Count(f.logs.String(), "session rejected by the site"); n != 1 {
		t.Fatalf("the site was asked %d times with the rejected session", n)
	}
	if !strings.Contains(f.emf.String(), `"session_invalid":1`) || !strings.Contains(f.emf.String(), `"CreatorId":"creator-a"`) {
		t.Fatalf("no session_invalid metric for creator-a:\n%s", f.emf)
	}
	// WHEN an operator stores a new session
	f.sessions.set("creator-a", f.site.AddCreator("creator-a"))
	// THEN creator-a resumes by itself: both delivered, in order, once
	ok := f.runUntil(60*time.Second, func() bool { return len(f.site.Texts("creator-a")) == 2 && f.queueCount(f.queues.Workflows.URL) == 0 })
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "a0,a1" {
		t.Fatalf("after the new session: ok %t, %q\n%s", ok, got, f.logs)
	}
	if !strings.Contains(f.logs.String(), "session changed; resuming") {
		t.Fatal("no resume logged")
	}
}
