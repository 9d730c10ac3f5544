package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/devstack/lambdalocal"
	"github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/test/harness"
	"github.com/huntaze/message-pipeline/test/wait"
)

// jsonLines decodes every JSON line written so far.
func jsonLines(t testing.TB, b *harness.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("not a JSON line: %s", l)
		}
		out = append(out, m)
	}
	return out
}

// sqsClient is every SQS call the handler and the poller make.
type sqsClient interface {
	handler.SQSAPI
	lambdalocal.PollerSQS
}

// faultySQS passes every call to a real queue (fauxqs, or the AWS-shape
// double in front of it) with counters and injected faults:
// SendMessageBatch entries whose body contains failMarker are reported
// failed (failTimes times per body when set, else always); with compress
// set, every visibility change is recorded and applied as 0, so a test can
// drive hundreds of receives of an outage without waiting out whole seconds.
type faultySQS struct {
	sqsClient
	sendBatches atomic.Int32
	failMarker  atomic.Value // string
	failTimes   int
	compress    bool

	mu          sync.Mutex
	failedSoFar map[string]int
	visibility  []int32
}

func (f *faultySQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.sendBatches.Add(1)
	marker, _ := f.failMarker.Load().(string)
	if marker == "" {
		return f.sqsClient.SendMessageBatch(ctx, in, opts...)
	}
	var keep []sqstypes.SendMessageBatchRequestEntry
	var failed []sqstypes.BatchResultErrorEntry
	f.mu.Lock()
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		if strings.Contains(body, marker) && (f.failTimes == 0 || f.failedSoFar[body] < f.failTimes) {
			if f.failedSoFar == nil {
				f.failedSoFar = map[string]int{}
			}
			f.failedSoFar[body]++
			failed = append(failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected"), SenderFault: false})
			continue
		}
		keep = append(keep, e)
	}
	f.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	if len(keep) > 0 {
		in2 := *in
		in2.Entries = keep
		o, err := f.sqsClient.SendMessageBatch(ctx, &in2, opts...)
		if err != nil {
			return nil, err
		}
		out = o
	}
	out.Failed = append(out.Failed, failed...)
	return out, nil
}

func (f *faultySQS) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	if !f.compress {
		return f.sqsClient.ChangeMessageVisibilityBatch(ctx, in, opts...)
	}
	in2 := *in
	in2.Entries = slices.Clone(in.Entries)
	f.mu.Lock()
	for i, e := range in2.Entries {
		f.visibility = append(f.visibility, e.VisibilityTimeout)
		in2.Entries[i].VisibilityTimeout = 0
	}
	f.mu.Unlock()
	return f.sqsClient.ChangeMessageVisibilityBatch(ctx, &in2, opts...)
}

type fixture struct {
	redis   *harness.Redis
	rdb     *redis.Client
	aws     *harness.Fauxqs
	src     sqsClient // the intake queue's client: fauxqs or the AWS-shape double
	sqs     *faultySQS
	queues  emulator.System
	limiter *ratelimit.Limiter
	handler *handler.Handler
	poller  *lambdalocal.Poller
	logs    *harness.Buffer
	emf     *harness.Buffer
}

type options struct {
	awsShape bool // the intake queue hands out several records of a group per batch, as AWS does
	compress bool
}

func setup(t *testing.T, cfg ratelimit.Config, o options) *fixture {
	t.Helper()
	f := &fixture{redis: harness.StartRedis(t), aws: harness.StartFauxqs(t), logs: &harness.Buffer{}, emf: &harness.Buffer{}}
	f.rdb = redis.NewClient(&redis.Options{Addr: f.redis.Addr, PoolSize: 32, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = f.rdb.Close() })
	f.queues = f.aws.CreateQueues(t, "test")
	f.src = f.aws.SQS
	if o.awsShape {
		f.src = harness.NewAWSShapeFIFO(f.aws.SQS, f.queues.RateLimiter.URL)
	}
	f.sqs = &faultySQS{sqsClient: f.src, compress: o.compress}
	var err error
	if f.limiter, err = ratelimit.New(f.rdb, cfg); err != nil {
		t.Fatal(err)
	}
	harness.PrimeFence(t, f.rdb, cfg.FenceKey())
	f.handler, err = handler.New(handler.Config{
		IntakeQueueURL: f.queues.RateLimiter.URL, WorkflowsQueueURL: f.queues.Workflows.URL,
		IntakeDLQURL: f.queues.RateLimiter.DLQURL, Version: "test-1",
		ReturnSlack: 0, OutageBackoff: time.Second,
	}, f.limiter, f.sqs, slog.New(slog.NewJSONHandler(f.logs, nil)),
		metrics.New(f.emf, map[string]string{"Service": "rate-limiter"}, time.Now), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.poller = &lambdalocal.Poller{Client: f.sqs, QueueURL: f.queues.RateLimiter.URL, QueueARN: f.queues.RateLimiter.ARN, BatchSize: 10, Handler: f.handler.Handle}
	return f
}

func scaled(limit int, window time.Duration) ratelimit.Config {
	return ratelimit.Config{Limit: limit, Window: window, KeyPrefix: "rl"}
}

func newMessage(t testing.TB, creator string, i int) message.Message {
	t.Helper()
	m, err := message.New("user-"+creator, fmt.Sprint("fan-", i), fmt.Sprintf("hello %d from %s", i, creator), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m.CreatorID = creator
	return m
}

// enqueue sends messages to the intake queue as the API does: group =
// creator key, deduplication id = messageId.
func (f *fixture) enqueue(t testing.TB, msgs ...message.Message) {
	t.Helper()
	for _, m := range msgs {
		body, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f.enqueueRaw(t, string(body), m.Attributes().SQS(), m.CreatorKey(), m.MessageID)
	}
}

func (f *fixture) enqueueRaw(t testing.TB, body string, attrs map[string]sqstypes.MessageAttributeValue, group, dedup string) {
	t.Helper()
	if _, err := f.src.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(f.queues.RateLimiter.URL), MessageBody: aws.String(body), MessageAttributes: attrs,
		MessageGroupId: aws.String(group), MessageDeduplicationId: aws.String(dedup),
	}); err != nil {
		t.Fatal(err)
	}
}

func pollOnce(t testing.TB, f *fixture) lambdalocal.Result {
	t.Helper()
	res, err := f.poller.PollOnce(context.Background())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return res
}

// pollUntilQuiet polls until a receive comes back empty (bounded).
func pollUntilQuiet(t testing.TB, f *fixture) (total lambdalocal.Result) {
	t.Helper()
	for range 100 {
		r := pollOnce(t, f)
		if r.Received == 0 {
			return total
		}
		total.Received += r.Received
		total.Deleted += r.Deleted
		total.Failed += r.Failed
	}
	t.Fatal("the intake queue never went quiet")
	return total
}

func attr(m sqstypes.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}

// contents returns the message contents of forwarded messages, in order.
func contents(t testing.TB, ms []sqstypes.Message) []string {
	t.Helper()
	out := make([]string, len(ms))
	for i, m := range ms {
		msg, err := message.Parse([]byte(aws.ToString(m.Body)))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = msg.Content
	}
	return out
}

func TestAllowedMessagesAreForwardedWithBodyAttributesGroupAndDedup(t *testing.T) {
	// GIVEN three messages for one creator, under the limit
	f := setup(t, scaled(10, 2*time.Second), options{})
	msgs := []message.Message{newMessage(t, "creator-a", 0), newMessage(t, "creator-a", 1), newMessage(t, "creator-a", 2)}
	f.enqueue(t, msgs...)

	// WHEN the limiter runs
	before := time.Now()
	res := pollUntilQuiet(t, f)
	after := time.Now()

	// THEN all three are deleted from the source and are in the FIFO queue in
	// order, byte-identical, grouped by creator, deduplicated by content hash,
	// with the original attributes and the limiter's own
	if res.Received != 3 || res.Deleted != 3 || res.Failed != 0 {
		t.Fatalf("poll result %+v", res)
	}
	got := harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)
	if len(got) != 3 {
		t.Fatalf("forwarded %d, want 3", len(got))
	}
	for i, m := range got {
		body, _ := msgs[i].Marshal()
		dedup, _ := msgs[i].DeduplicationID()
		if aws.ToString(m.Body) != string(body) {
			t.Errorf("body %d = %s, want %s", i, aws.ToString(m.Body), body)
		}
		if m.Attributes["MessageGroupId"] != "creator-a" || m.Attributes["MessageDeduplicationId"] != dedup {
			t.Errorf("group/dedup = %q/%q, want creator-a/%s", m.Attributes["MessageGroupId"], m.Attributes["MessageDeduplicationId"], dedup)
		}
		for k, v := range msgs[i].Attributes().Strings() {
			if attr(m, k) != v {
				t.Errorf("attribute %s = %q, want %q", k, attr(m, k), v)
			}
		}
		if attr(m, message.AttrRateLimiterVersion) != "test-1" || attr(m, message.AttrTokensRemaining) != strconv.Itoa(9-i) {
			t.Errorf("limiter attributes: version %q tokens %q", attr(m, message.AttrRateLimiterVersion), attr(m, message.AttrTokensRemaining))
		}
		if ts, err := strconv.ParseInt(attr(m, message.AttrRateLimitTimestamp), 10, 64); err != nil || ts < before.UnixMilli() || ts > after.UnixMilli() {
			t.Errorf("rate_limit_timestamp = %q", attr(m, message.AttrRateLimitTimestamp))
		}
	}
}

func TestOneRedisCallAndOneSendBatchPerBatch(t *testing.T) {
	// GIVEN 10 messages for 10 creators and a warmed-up limiter
	f := setup(t, scaled(10, 2*time.Second), options{})
	f.enqueue(t, newMessage(t, "warm", 0))
	pollOnce(t, f)
	harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)
	for i := range 10 {
		f.enqueue(t, newMessage(t, fmt.Sprint("creator-", i), i))
	}
	redisBefore, sendsBefore := harness.ScriptCalls(t, f.rdb), f.sqs.sendBatches.Load()

	// WHEN one batch of 10 is handled
	res := pollOnce(t, f)

	// THEN Redis saw one script call and SQS one SendMessageBatch
	if res.Received != 10 || res.Deleted != 10 {
		t.Fatalf("poll result %+v, want 10 received and deleted", res)
	}
	if got := harness.ScriptCalls(t, f.rdb) - redisBefore; got != 1 {
		t.Errorf("redis script calls = %d, want 1", got)
	}
	if got := f.sqs.sendBatches.Load() - sendsBefore; got != 1 {
		t.Errorf("SendMessageBatch calls = %d, want 1", got)
	}
}

func TestADeniedRecordTakesItsCreatorsLaterRecordsBackWithIt(t *testing.T) {
	// GIVEN a limit of 2 per 2 s, and AWS handing out 4 of creator c and
	// one of d in one batch
	f := setup(t, scaled(2, 2*time.Second), options{awsShape: true})
	f.enqueue(t, newMessage(t, "c", 0), newMessage(t, "c", 1), newMessage(t, "d", 0), newMessage(t, "c", 2), newMessage(t, "c", 3))

	// WHEN the limiter runs
	res := pollOnce(t, f)

	// THEN c0, c1 and d0 are forwarded; c2 is denied and c3 goes back with it
	if res.Received != 5 || res.Deleted != 3 || res.Failed != 2 {
		t.Fatalf("poll result %+v, want 5 received, 3 deleted, 2 failed", res)
	}
	if got := contents(t, harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); len(got) != 3 {
		t.Fatalf("forwarded %q", got)
	}
	if again := pollOnce(t, f); again.Received != 0 {
		t.Fatalf("returned records visible again at once: %+v", again)
	}
	// AND the denial is logged as a decision, not as an error, and counted
	var denials int
	for _, l := range jsonLines(t, f.logs) {
		if l["level"] == "ERROR" {
			t.Fatalf("error logged for a denial: %v", l)
		}
		if l["msg"] == "rate limit decision" && l["allowed"] == false {
			denials++
			if l["retry_after_ms"].(float64) <= 0 || l["creator_id"] != "c" || l["message_id"] == "" {
				t.Fatalf("denial log line = %v", l)
			}
		}
	}
	emf := jsonLines(t, f.emf)
	if last := emf[len(emf)-1]; denials != 2 || last[handler.MetricRejected] != 2.0 || last[handler.MetricAllowed] != 3.0 || last[handler.MetricRedisErrors] != 0.0 {
		t.Fatalf("%d denials; EMF line = %v", denials, last)
	}

	// WHEN the window has room again
	var forwarded []string
	wait.Until(8*time.Second, 100*time.Millisecond, func() bool {
		pollOnce(t, f)
		forwarded = append(forwarded, contents(t, harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL))...)
		return len(forwarded) >= 2
	})
	// THEN c2 then c3 are forwarded, in that order
	if want := []string{"hello 2 from c", "hello 3 from c"}; !slices.Equal(forwarded, want) {
		t.Fatalf("forwarded after the window %q, want %q", forwarded, want)
	}
}

func TestEveryPositionOfACreatorInABatchKeepsItsOrder(t *testing.T) {
	// GIVEN creator a's records at every position of a batch of 10 (the rest
	// one record each of other creators), and a's window with 0..3 free slots
	layouts := map[string][]bool{}
	for first := range 10 {
		for _, n := range []int{1, 3, 10 - first} {
			l := make([]bool, 10)
			for i := first; i < min(first+n, 10); i++ {
				l[i] = true
			}
			layouts[fmt.Sprintf("from %d, %d long", first, n)] = l
		}
	}
	layouts["alternating"] = []bool{true, false, true, false, true, false, true, false, true, false}
	f := setup(t, scaled(5, time.Hour), options{awsShape: true})
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range layouts {
			if !yield(k) {
				return
			}
		}
	})
	for ci, name := range names {
		for free := range 4 {
			a := fmt.Sprintf("a-%d-%d", ci, free)
			t.Run(fmt.Sprintf("%s, %d free", name, free), func(t *testing.T) {
				// a's window holds 5-free approvals already
				for i := range 5 - free {
					if _, err := f.limiter.Decide(context.Background(), []ratelimit.Request{{Key: a, ID: fmt.Sprint("old", i)}}); err != nil {
						t.Fatal(err)
					}
				}
				var want []string
				for i, isA := range layouts[name] {
					if isA {
						m := newMessage(t, a, i)
						want = append(want, m.Content)
						f.enqueue(t, m)
					} else {
						f.enqueue(t, newMessage(t, fmt.Sprintf("o-%d-%d-%d", ci, free, i), i))
					}
				}
				// WHEN one batch is handled
				res := pollOnce(t, f)
				// THEN every other creator's record is forwarded, a's first
				// `free` records are forwarded in order and the rest returned
				if res.Received != 10 {
					t.Fatalf("received %d, want 10 in one batch", res.Received)
				}
				var gotA []string
				others := 0
				for _, m := range harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL) {
					if m.Attributes["MessageGroupId"] == a {
						gotA = append(gotA, contents(t, []sqstypes.Message{m})[0])
					} else {
						others++
					}
				}
				wantFwd := want[:min(free, len(want))]
				if !slices.Equal(gotA, wantFwd) || others != 10-len(want) || res.Failed != len(want)-len(wantFwd) {
					t.Fatalf("a forwarded %q, want %q; others %d of %d; %+v", gotA, wantFwd, others, 10-len(want), res)
				}
			})
		}
	}
}

func TestAFailedForwardReturnsThatRecordAndItsCreatorsLaterOnes(t *testing.T) {
	// GIVEN a0, a1, a2 and b0 in one batch, and the FIFO queue refusing a1
	f := setup(t, scaled(10, time.Hour), options{awsShape: true})
	msgs := []message.Message{newMessage(t, "a", 0), newMessage(t, "a", 1), newMessage(t, "b", 0), newMessage(t, "a", 2)}
	msgs[1].Content = "refuse-me"
	f.enqueue(t, msgs...)
	f.sqs.failMarker.Store("refuse-me")

	// WHEN the limiter runs
	res := pollOnce(t, f)

	// THEN a0 and b0 are forwarded; a1 and a2 go back; a2 was never sent
	// ahead of a1
	if res.Deleted != 2 || res.Failed != 2 {
		t.Fatalf("poll result %+v", res)
	}
	if got := contents(t, harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); !slices.Equal(got, []string{"hello 0 from a", "hello 0 from b"}) {
		t.Fatalf("forwarded %q", got)
	}
	// WHEN the queue accepts again and the records come back
	f.sqs.failMarker.Store("")
	var got []string
	wait.Until(10*time.Second, 100*time.Millisecond, func() bool {
		pollOnce(t, f)
		got = append(got, contents(t, harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL))...)
		return len(got) >= 2
	})
	// THEN a1 then a2 follow
	if !slices.Equal(got, []string{"refuse-me", "hello 2 from a"}) {
		t.Fatalf("forwarded after recovery %q", got)
	}
}

func TestTenApprovedMessagesOf110KBAreAllForwarded(t *testing.T) {
	// GIVEN 10 messages of ~110 KB for 10 creators: 1.1 MB, over the 1 MiB
	// a SendMessageBatch may carry
	f := setup(t, scaled(10, time.Hour), options{})
	for i := range 10 {
		m := newMessage(t, fmt.Sprint("big-", i), i)
		m.Metadata = map[string]string{}
		for k := range 27 { // 27 × 4 KiB of metadata: the API accepts up to 255 KiB
			m.Metadata[fmt.Sprint("k", k)] = strings.Repeat(string(rune('a'+i)), 4096)
		}
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		f.enqueue(t, m)
	}
	// WHEN the limiter runs
	res := pollUntilQuiet(t, f)
	// THEN all 10 are forwarded (in two calls), none returned
	if res.Deleted != 10 || res.Failed != 0 {
		t.Fatalf("poll result %+v", res)
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); n != 10 {
		t.Fatalf("forwarded %d of 10; logs %s", n, f.logs.String())
	}
}

func TestARedisOutageLongerThanOneHundredReceivesDeadLettersNothing(t *testing.T) {
	// GIVEN messages waiting and Redis down; visibility changes are recorded
	// and applied as 0 so that 150 receives take seconds, not hours
	f := setup(t, scaled(10, time.Second), options{compress: true})
	f.enqueue(t, newMessage(t, "a", 0), newMessage(t, "b", 0))
	f.redis.Stop()

	// WHEN the limiter receives them 150 times (the old maxReceiveCount of
	// 100 would have dead-lettered them at the 101st)
	receives := 0
	for receives < 300 {
		res, _ := f.poller.PollOnce(context.Background())
		if res.Received == 0 {
			t.Fatalf("records vanished after %d receives", receives)
		}
		receives += res.Received
	}

	// THEN none is in the DLQ, each wait grew and stayed at most 15 minutes
	if n := harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.DLQURL); n != 0 {
		t.Fatalf("%d messages dead-lettered by an outage", n)
	}
	f.sqs.mu.Lock()
	vis := slices.Clone(f.sqs.visibility)
	f.sqs.mu.Unlock()
	if vis[0] != 1 || slices.Max(vis) != 900 || vis[len(vis)-1] != 900 {
		t.Fatalf("visibility asked: first %d, max %d, last %d; want 1 growing to 900", vis[0], slices.Max(vis), vis[len(vis)-1])
	}
	// WHEN Redis comes back (empty: the fence holds one window first)
	f.redis.Restart()
	var forwarded int
	wait.Until(10*time.Second, 100*time.Millisecond, func() bool {
		pollOnce(t, f)
		forwarded += len(harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL))
		return forwarded >= 2
	})
	// THEN both are forwarded
	if forwarded != 2 {
		t.Fatalf("forwarded %d of 2 after the outage", forwarded)
	}
	t.Logf("%d receives during the outage, 0 dead-lettered", receives)
}

func TestInvalidRecordsGoToTheDLQWithTheirReason(t *testing.T) {
	// GIVEN an unparseable body, a message without userId, and a good one
	f := setup(t, scaled(10, 2*time.Second), options{})
	f.enqueueRaw(t, "{not json", nil, "g1", "d1")
	bad := newMessage(t, "c", 0)
	bad.UserID, bad.CreatorID = "", ""
	body, _ := json.Marshal(bad)
	f.enqueueRaw(t, string(body), map[string]sqstypes.MessageAttributeValue{"messageType": {DataType: aws.String("String"), StringValue: aws.String("x")}}, "g2", "d2")
	f.enqueue(t, newMessage(t, "c", 1))

	// WHEN the limiter runs
	res := pollUntilQuiet(t, f)

	// THEN all three leave the source queue, the good one is forwarded and the
	// two invalid records are in the DLQ with body, attributes, group, reason
	if res.Deleted != 3 {
		t.Fatalf("poll result %+v", res)
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); n != 1 {
		t.Fatalf("forwarded %d, want 1", n)
	}
	dlq := harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.DLQURL)
	if len(dlq) != 2 {
		t.Fatalf("DLQ has %d, want 2", len(dlq))
	}
	sort.Slice(dlq, func(i, j int) bool { return dlq[i].Attributes["MessageGroupId"] < dlq[j].Attributes["MessageGroupId"] })
	if r := attr(dlq[0], message.AttrFailureReason); !strings.Contains(r, "unparseable body") || dlq[0].Attributes["MessageGroupId"] != "g1" {
		t.Fatalf("first: reason %q group %q", r, dlq[0].Attributes["MessageGroupId"])
	}
	if r := attr(dlq[1], message.AttrFailureReason); !strings.Contains(r, "userId: is required") || attr(dlq[1], "messageType") != "x" {
		t.Fatalf("second: reason %q attributes %v", r, dlq[1].MessageAttributes)
	}
	warned := 0
	for _, l := range jsonLines(t, f.logs) {
		if l["msg"] == "invalid record moved to the DLQ" && l["sqs_message_id"] != "" && l["failure_reason"] != "" {
			warned++
		}
	}
	if warned != 2 {
		t.Fatalf("%d DLQ log lines, want 2", warned)
	}
}

// TestTenConcurrentPollersKeepEachCreatorsOrderAndEveryRollingWindow is the
// order promise under the worst the intake sees: 10 concurrent limiter
// invocations, 6 creators of skewed volume whose clients send one after the
// other (one of them in batches of up to 10), and forwards failing now and
// then, against fauxqs and against the AWS-shape double.
func TestTenConcurrentPollersKeepEachCreatorsOrderAndEveryRollingWindow(t *testing.T) {
	for _, shape := range []struct {
		name string
		o    options
	}{{"fauxqs", options{}}, {"aws-shape", options{awsShape: true}}} {
		t.Run(shape.name, func(t *testing.T) {
			const limit, window = 10, time.Second
			f := setup(t, scaled(limit, window), shape.o)
			f.sqs.failMarker.Store("flaky")
			f.sqs.failTimes = 2
			volume := map[string]int{"heavy": 64, "c1": 12, "c2": 8, "c3": 5, "c4": 3, "batcher": 25}
			accepted := map[string][]string{}
			var mu sync.Mutex
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			// Producers: sequential per creator, each send accepted before the next.
			var producers sync.WaitGroup
			for creator, n := range volume {
				producers.Add(1)
				go func() {
					defer producers.Done()
					rng := rand.New(rand.NewPCG(uint64(n), 3))
					for i := 0; i < n; {
						k := 1
						if creator == "batcher" {
							k = min(1+rng.IntN(10), n-i)
						}
						var entries []sqstypes.SendMessageBatchRequestEntry
						var texts []string
						for j := range k {
							m := newMessage(t, creator, i+j)
							if rng.IntN(7) == 0 {
								m.Content = fmt.Sprintf("flaky %d from %s", i+j, creator)
							}
							body, _ := m.Marshal()
							entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(string(body)),
								MessageGroupId: aws.String(creator), MessageDeduplicationId: aws.String(m.MessageID), MessageAttributes: m.Attributes().SQS()})
							texts = append(texts, m.Content)
						}
						out, err := f.src.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(f.queues.RateLimiter.URL), Entries: entries})
						if err != nil || len(out.Failed) > 0 {
							t.Errorf("enqueue: %v %v", err, out)
							return
						}
						mu.Lock()
						accepted[creator] = append(accepted[creator], texts...)
						mu.Unlock()
						i += k
						time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
					}
				}()
			}

			// 10 concurrent pollers, like an event source at concurrency 10.
			total := 0
			for _, n := range volume {
				total += n
			}
			var forwarded []sqstypes.Message
			var pollers sync.WaitGroup
			done := make(chan struct{})
			for range 10 {
				pollers.Add(1)
				go func() {
					defer pollers.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						if _, err := f.poller.PollOnce(ctx); err != nil && ctx.Err() == nil {
							t.Errorf("poll: %v", err)
							return
						}
						time.Sleep(20 * time.Millisecond)
					}
				}()
			}
			producers.Wait()
			until, _ := ctx.Deadline()
			wait.Until(time.Until(until), 100*time.Millisecond, func() bool {
				forwarded = append(forwarded, harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)...)
				return len(forwarded) >= total
			})
			close(done)
			pollers.Wait()

			// THEN each creator's messages are in the FIFO queue once each, in
			// the order they were accepted, and no rolling window is over the limit
			got := map[string][]string{}
			times := map[string][]time.Time{}
			for _, m := range forwarded {
				g := m.Attributes["MessageGroupId"]
				got[g] = append(got[g], contents(t, []sqstypes.Message{m})[0])
				ms, _ := strconv.ParseInt(attr(m, message.AttrRateLimitTimestamp), 10, 64)
				times[g] = append(times[g], time.UnixMilli(ms))
			}
			for creator := range volume {
				if !slices.Equal(got[creator], accepted[creator]) {
					t.Errorf("%s: forwarded %d in order %q\naccepted %d in order %q", creator, len(got[creator]), got[creator], len(accepted[creator]), accepted[creator])
				}
				slices.SortFunc(times[creator], func(a, b time.Time) int { return a.Compare(b) })
				for i := limit; i < len(times[creator]); i++ {
					if d := times[creator][i].Sub(times[creator][i-limit]); d < window-time.Millisecond {
						t.Errorf("%s: %d approvals within %s", creator, limit+1, d)
					}
				}
			}
			if n := harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.DLQURL); n != 0 {
				t.Errorf("%d in the intake DLQ", n)
			}
			f.sqs.mu.Lock()
			t.Logf("%d messages, %d forward failures injected", total, len(f.sqs.failedSoFar))
			f.sqs.mu.Unlock()
		})
	}
}
