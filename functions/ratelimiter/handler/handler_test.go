package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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

	"github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/sqsevent"
	"github.com/huntaze/message-pipeline/test/harness"
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

// faultySQS is the real fauxqs client with counters and one injected fault:
// SendMessageBatch entries whose body contains failMarker are reported failed.
type faultySQS struct {
	*sqs.Client
	sendBatches atomic.Int32
	failMarker  atomic.Value // string
}

func (f *faultySQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.sendBatches.Add(1)
	marker, _ := f.failMarker.Load().(string)
	if marker == "" {
		return f.Client.SendMessageBatch(ctx, in, opts...)
	}
	var keep []sqstypes.SendMessageBatchRequestEntry
	var failed []sqstypes.BatchResultErrorEntry
	for _, e := range in.Entries {
		if strings.Contains(aws.ToString(e.MessageBody), marker) {
			failed = append(failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("injected"), SenderFault: false})
			continue
		}
		keep = append(keep, e)
	}
	out := &sqs.SendMessageBatchOutput{}
	if len(keep) > 0 {
		in2 := *in
		in2.Entries = keep
		o, err := f.Client.SendMessageBatch(ctx, &in2, opts...)
		if err != nil {
			return nil, err
		}
		out = o
	}
	out.Failed = append(out.Failed, failed...)
	return out, nil
}

type fixture struct {
	redis   *harness.Redis
	rdb     *redis.Client
	aws     *harness.Fauxqs
	sqs     *faultySQS
	queues  queues.System
	limiter *ratelimit.Limiter
	handler *handler.Handler
	poller  *sqsevent.Poller
	logs    *harness.Buffer
	emf     *harness.Buffer
}

func setup(t *testing.T, cfg ratelimit.Config) *fixture {
	t.Helper()
	f := &fixture{redis: harness.StartRedis(t), aws: harness.StartFauxqs(t), logs: &harness.Buffer{}, emf: &harness.Buffer{}}
	f.rdb = redis.NewClient(&redis.Options{Addr: f.redis.Addr, PoolSize: 32, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = f.rdb.Close() })
	f.queues = f.aws.CreateQueues(t, "test")
	f.sqs = &faultySQS{Client: f.aws.SQS}
	var err error
	if f.limiter, err = ratelimit.New(f.rdb, cfg); err != nil {
		t.Fatal(err)
	}
	f.handler, err = handler.New(handler.Config{
		SourceQueueURL: f.queues.RateLimiter.URL, WorkflowsQueueURL: f.queues.Workflows.URL,
		DeadLetterQueueURL: f.queues.RateLimiter.DLQURL, Version: "test-1",
		RedisErrorBackoff: time.Second, ForwardFailureBackoff: time.Second,
	}, f.limiter, f.sqs, slog.New(slog.NewJSONHandler(f.logs, nil)),
		metrics.New(f.emf, map[string]string{"Service": "rate-limiter"}, time.Now), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	f.poller = &sqsevent.Poller{Client: f.aws.SQS, QueueURL: f.queues.RateLimiter.URL, QueueARN: f.queues.RateLimiter.ARN, BatchSize: 10, Handler: f.handler.Handle}
	return f
}

func scaled(limit int, window, slack time.Duration) ratelimit.Config {
	return ratelimit.Config{Limit: limit, Window: window, ReservationGrace: 5 * time.Second, ReturnSlack: slack, KeyPrefix: "rl"}
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

// enqueue sends messages to the rate limiter queue as the API does.
func (f *fixture) enqueue(t testing.TB, msgs ...message.Message) {
	t.Helper()
	for _, m := range msgs {
		body, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f.enqueueRaw(t, string(body), m.Attributes().SQS())
	}
}

func (f *fixture) enqueueRaw(t testing.TB, body string, attrs map[string]sqstypes.MessageAttributeValue) {
	t.Helper()
	if _, err := f.aws.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(f.queues.RateLimiter.URL), MessageBody: aws.String(body), MessageAttributes: attrs,
	}); err != nil {
		t.Fatal(err)
	}
}

func pollOnce(t testing.TB, f *fixture) sqsevent.Result {
	t.Helper()
	res, err := f.poller.PollOnce(context.Background())
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return res
}

func attr(m sqstypes.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}

func TestAllowedMessagesAreForwardedWithBodyAttributesGroupAndDedup(t *testing.T) {
	// GIVEN three messages for one creator, under the limit
	f := setup(t, scaled(10, 2*time.Second, 0))
	msgs := []message.Message{newMessage(t, "creator-a", 0), newMessage(t, "creator-a", 1), newMessage(t, "creator-a", 2)}
	f.enqueue(t, msgs...)

	// WHEN the limiter runs
	res := pollOnce(t, f)

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
		if attr(m, handler.AttrRateLimiterVersion) != "test-1" || attr(m, handler.AttrTokensRemaining) != strconv.Itoa(9-i) {
			t.Errorf("limiter attributes: version %q tokens %q", attr(m, handler.AttrRateLimiterVersion), attr(m, handler.AttrTokensRemaining))
		}
		if ts, err := strconv.ParseInt(attr(m, handler.AttrRateLimitTimestamp), 10, 64); err != nil || time.Since(time.UnixMilli(ts)) > time.Minute {
			t.Errorf("rate_limit_timestamp = %q", attr(m, handler.AttrRateLimitTimestamp))
		}
	}
	if left := harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL); len(left) != 0 {
		t.Fatalf("%d records left in the source queue", len(left))
	}
}

func TestOneRedisCallAndOneSendBatchPerBatch(t *testing.T) {
	// GIVEN 10 messages for 3 creators and a warmed-up limiter
	f := setup(t, scaled(10, 2*time.Second, 0))
	f.enqueue(t, newMessage(t, "warm", 0))
	pollOnce(t, f)
	harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)
	for i := range 10 {
		f.enqueue(t, newMessage(t, fmt.Sprint("creator-", i%3), i))
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

func TestDeniedMessagesComeBackAtTheirSlotWithoutErrors(t *testing.T) {
	// GIVEN a limit of 2 per 2 s and 3 messages
	f := setup(t, scaled(2, 2*time.Second, 0))
	f.enqueue(t, newMessage(t, "c", 0), newMessage(t, "c", 1), newMessage(t, "c", 2))

	// WHEN the limiter runs
	res := pollOnce(t, f)

	// THEN 2 are forwarded and 1 is returned, invisible until its slot
	if res.Deleted != 2 || res.Failed != 1 {
		t.Fatalf("poll result %+v, want 2 deleted 1 failed", res)
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); n != 2 {
		t.Fatalf("forwarded %d, want 2", n)
	}
	if again := pollOnce(t, f); again.Received != 0 {
		t.Fatalf("denied record visible again at once: %+v", again)
	}
	// AND the denial is logged as a decision, not as an error, and counted
	var denial map[string]any
	for _, l := range jsonLines(t, f.logs) {
		if l["level"] == "ERROR" {
			t.Fatalf("error logged for a denial: %v", l)
		}
		if l["msg"] == "rate limit decision" && l["allowed"] == false {
			denial = l
		}
	}
	if denial == nil || denial["retry_after_ms"].(float64) <= 0 || denial["creator_id"] != "c" || denial["message_id"] == "" || denial["tokens_remaining"] == nil {
		t.Fatalf("denial log line = %v", denial)
	}
	emf := jsonLines(t, f.emf)
	if last := emf[len(emf)-1]; last[handler.MetricRejected] != 1.0 || last[handler.MetricAllowed] != 2.0 || last[handler.MetricRedisErrors] != 0.0 {
		t.Fatalf("EMF line = %v", last)
	}

	// WHEN its slot has come (2 s, rounded up to whole seconds by SQS)
	time.Sleep(2100 * time.Millisecond)
	var got sqsevent.Result
	for deadline := time.Now().Add(3 * time.Second); got.Received == 0 && time.Now().Before(deadline); {
		got = pollOnce(t, f)
		time.Sleep(100 * time.Millisecond)
	}
	// THEN it is forwarded
	if got.Deleted != 1 {
		t.Fatalf("after the slot: %+v", got)
	}
}

func TestForwardFailureReturnsOnlyThatRecordAndKeepsItsTokenSpent(t *testing.T) {
	// GIVEN 3 messages, one of which the FIFO queue will refuse once
	f := setup(t, scaled(10, 2*time.Second, 0))
	msgs := []message.Message{newMessage(t, "c", 0), newMessage(t, "c", 1), newMessage(t, "c", 2)}
	msgs[1].Content = "refuse-me"
	f.enqueue(t, msgs...)
	f.sqs.failMarker.Store("refuse-me")

	// WHEN the limiter runs
	res := pollOnce(t, f)

	// THEN only that record fails, the others are forwarded, and its approval
	// still counts (3 tokens spent)
	if res.Deleted != 2 || res.Failed != 1 {
		t.Fatalf("poll result %+v", res)
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); n != 2 {
		t.Fatalf("forwarded %d, want 2", n)
	}
	log, _ := f.limiter.Keys("c")
	if n := f.rdb.ZCard(context.Background(), log).Val(); n != 3 {
		t.Fatalf("approvals in the window = %d, want 3 (the failed forward's token stays spent)", n)
	}
	emf := jsonLines(t, f.emf)
	if emf[len(emf)-1][handler.MetricForwardFailures] != 1.0 {
		t.Fatalf("EMF = %v", emf[len(emf)-1])
	}

	// WHEN the queue accepts it again and the record comes back
	f.sqs.failMarker.Store("")
	time.Sleep(1100 * time.Millisecond)
	var got sqsevent.Result
	for deadline := time.Now().Add(3 * time.Second); got.Received == 0 && time.Now().Before(deadline); {
		got = pollOnce(t, f)
		time.Sleep(100 * time.Millisecond)
	}
	// THEN it is forwarded once, with a new token
	fwd := harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)
	if got.Deleted != 1 || len(fwd) != 1 || !strings.Contains(aws.ToString(fwd[0].Body), "refuse-me") {
		t.Fatalf("retry: %+v, forwarded %d", got, len(fwd))
	}
	if n := f.rdb.ZCard(context.Background(), log).Val(); n != 4 {
		t.Fatalf("approvals = %d, want 4", n)
	}
}

func TestRedisDownFailsClosedThenRecoversWithoutLoss(t *testing.T) {
	// GIVEN 5 messages and Redis stopped
	f := setup(t, scaled(10, 2*time.Second, 0))
	for i := range 5 {
		f.enqueue(t, newMessage(t, "c", i))
	}
	f.redis.Stop()

	// WHEN the limiter runs
	res := pollOnce(t, f)

	// THEN nothing is forwarded, everything is returned, one error is logged
	// and the redis_errors metric counts it
	if res.Received != 5 || res.Failed != 5 {
		t.Fatalf("poll result %+v", res)
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); n != 0 {
		t.Fatalf("forwarded %d while Redis was down", n)
	}
	errorsLogged := 0
	for _, l := range jsonLines(t, f.logs) {
		if l["level"] == "ERROR" {
			errorsLogged++
		}
	}
	if errorsLogged != 1 {
		t.Fatalf("%d error lines, want 1", errorsLogged)
	}
	emf := jsonLines(t, f.emf)
	if emf[len(emf)-1][handler.MetricRedisErrors] != 1.0 {
		t.Fatalf("EMF = %v", emf[len(emf)-1])
	}

	// WHEN Redis comes back empty (failover: no scripts, no state)
	f.redis.Restart()
	time.Sleep(1100 * time.Millisecond)
	forwarded := 0
	for deadline := time.Now().Add(5 * time.Second); forwarded < 5 && time.Now().Before(deadline); {
		forwarded += pollOnce(t, f).Deleted
		time.Sleep(50 * time.Millisecond)
	}
	// THEN every message is forwarded exactly once
	if got := len(harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); forwarded != 5 || got != 5 {
		t.Fatalf("after recovery: %d deleted, %d in FIFO; want 5", forwarded, got)
	}
}

func TestPoisonRecordsGoToTheDLQWithTheirReason(t *testing.T) {
	// GIVEN an unparseable body, a message without userId, and a good one
	f := setup(t, scaled(10, 2*time.Second, 0))
	f.enqueueRaw(t, "{not json", nil)
	bad := newMessage(t, "c", 0)
	bad.UserID, bad.CreatorID = "", ""
	body, _ := json.Marshal(bad)
	f.enqueueRaw(t, string(body), map[string]sqstypes.MessageAttributeValue{"messageType": {DataType: aws.String("String"), StringValue: aws.String("x")}})
	f.enqueue(t, newMessage(t, "c", 1))

	// WHEN the limiter runs
	res := pollOnce(t, f)

	// THEN all three leave the source queue, the good one is forwarded and the
	// two poison records are in the DLQ with body, attributes and reason
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
	reasons := []string{attr(dlq[0], handler.AttrRejection), attr(dlq[1], handler.AttrRejection)}
	sort.Strings(reasons)
	if !strings.Contains(reasons[0], "userId: is required") || !strings.HasPrefix(reasons[1], "unparseable body") {
		t.Fatalf("reasons = %q", reasons)
	}
	for _, m := range dlq {
		if aws.ToString(m.Body) == string(body) && attr(m, "messageType") != "x" {
			t.Fatalf("original attribute lost: %v", m.MessageAttributes)
		}
	}
	warned := 0
	for _, l := range jsonLines(t, f.logs) {
		if l["msg"] == "poison record moved to the DLQ" && l["sqs_message_id"] != "" && l["reason"] != "" {
			warned++
		}
	}
	if warned != 2 {
		t.Fatalf("%d poison log lines, want 2", warned)
	}
}

func TestVisibilitySeconds(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want int32
	}{{0, 1}, {time.Microsecond, 1}, {1500 * time.Millisecond, 2}, {2 * time.Second, 2}, {13 * time.Hour, 43200}} {
		if got := handler.VisibilitySeconds(tc.in); got != tc.want {
			t.Errorf("VisibilitySeconds(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestConcurrentInvocationsKeepEveryRollingWindowAndForwardEachMessageOnce(t *testing.T) {
	// GIVEN 90 messages for 3 creators, 10 per 2 s, and 20 concurrent pollers
	const limit, window, perCreator = 10, 2 * time.Second, 30
	f := setup(t, scaled(limit, window, time.Second))
	// A record whose visibility change got lost comes back after the queue's
	// visibility timeout (180 s in the stack); 10 s keeps that within the test.
	if _, err := f.aws.SQS.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(f.queues.RateLimiter.URL), Attributes: map[string]string{"VisibilityTimeout": "10"}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range perCreator {
		for _, c := range []string{"creator-a", "creator-b", "creator-c"} {
			m := newMessage(t, c, i)
			want[m.MessageID] = true
			f.enqueue(t, m)
		}
	}

	// WHEN they poll until everything is forwarded (bounded)
	var forwarded, receives atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && forwarded.Load() < int32(len(want)) {
				res, err := f.poller.PollOnce(ctx)
				if err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
				receives.Add(int32(res.Received))
				forwarded.Add(int32(res.Deleted))
				if res.Received == 0 {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()

	// THEN every message is in the FIFO queue exactly once, and per creator
	// no rolling window holds more than the limit of approvals
	got := harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)
	seen := map[string]int{}
	approvals := map[string][]int64{}
	for _, m := range got {
		var msg message.Message
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &msg); err != nil {
			t.Fatal(err)
		}
		seen[msg.MessageID]++
		ts, _ := strconv.ParseInt(attr(m, handler.AttrRateLimitTimestamp), 10, 64)
		approvals[msg.CreatorID] = append(approvals[msg.CreatorID], ts)
	}
	if len(seen) != len(want) || len(got) != len(want) {
		for _, l := range jsonLines(t, f.logs) {
			if l["level"] != "INFO" {
				t.Log(l)
			}
		}
		t.Fatalf("FIFO holds %d messages (%d distinct), want %d", len(got), len(seen), len(want))
	}
	for c, ts := range approvals {
		slices.Sort(ts)
		for i := limit; i < len(ts); i++ {
			if ts[i]-ts[i-limit] < window.Milliseconds() {
				t.Fatalf("%s: %d approvals within %d ms (from %d to %d)", c, limit+1, ts[i]-ts[i-limit], ts[i-limit], ts[i])
			}
		}
	}
	// The ≤ 2 receives target is asserted on a backlog (internal/ratelimit,
	// make bench); here 20 pollers split neighbouring slots across receives,
	// and a later slot that comes back first waits once for the earlier one
	// (order), so this only bounds the cost.
	ratio := float64(receives.Load()) / float64(len(want))
	t.Logf("%d messages, %d receives (%.2f per forwarded message)", len(want), receives.Load(), ratio)
	if ratio > 3 {
		t.Fatalf("%.2f receives per forwarded message, want ≤ 3", ratio)
	}
}
