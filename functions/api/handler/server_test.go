package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	api "github.com/huntaze/message-pipeline/functions/api/handler"
	apisetup "github.com/huntaze/message-pipeline/functions/api/setup"
	"github.com/huntaze/message-pipeline/internal/auth"
	"github.com/huntaze/message-pipeline/internal/enqueue"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/featureflag"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/test/harness"
)

var jwtSecret = []byte("api-test-secret-api-test-secret!!")

const (
	issuer   = "https://auth.huntaze.test"
	audience = "huntaze-api"
)

// switchable is a flag source the test flips.
type switchable struct{ v atomic.Value }

func (s *switchable) Get(context.Context) (string, bool, error) {
	v, _ := s.v.Load().(string)
	return v, v != "", nil
}

// flagClock is the flag cache's clock: the wall clock moved on by what
// the test advances it, so a test passes the cache's TTL without sleeping.
type flagClock struct{ ahead atomic.Int64 }

func (c *flagClock) Now() time.Time           { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *flagClock) Advance(by time.Duration) { c.ahead.Add(int64(by)) }

type fixture struct {
	t       *testing.T
	aws     *harness.Fauxqs
	ddb     *harness.Dynalite
	redis   *harness.Redis
	proxy   *harness.FaultProxy
	queues  emulator.System
	store   *fallback.Store
	deps    api.Deps
	server  *api.Server
	flagSrc *switchable
	flagNow *flagClock
	logs    *harness.Buffer
	emf     *harness.Buffer
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, aws: harness.StartFauxqs(t), ddb: harness.StartDynalite(t), redis: harness.StartRedis(t), flagSrc: &switchable{}, flagNow: &flagClock{}, logs: &harness.Buffer{}, emf: &harness.Buffer{}}
	f.queues = f.aws.CreateQueues(t, "test")
	f.proxy = harness.StartFaultProxy(t, f.aws.Endpoint, "AmazonSQS.SendMessage")
	ctx := context.Background()
	if err := emulator.CreateFallbackTable(ctx, f.ddb.DynamoDB, "fallback"); err != nil {
		t.Fatal(err)
	}
	if err := emulator.CreateTable(ctx, f.ddb.DynamoDB, "idempotency", idempotency.KeyAttribute); err != nil {
		t.Fatal(err)
	}
	// The SQS client used for sends goes through the fault proxy, with the
	// production retryer and a short backoff.
	cfg := f.aws.Config.Copy()
	cfg.Retryer = enqueue.Retryer(20 * time.Millisecond)
	cfg.RetryMaxAttempts = 0 // the harness default of 1 would override the retryer
	sendClient := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(f.proxy.URL) })
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	f.store = fallback.NewStore(f.ddb.DynamoDB, "fallback", time.Now, 30*time.Second)
	rdb := f.redis.Client()
	f.deps = api.Deps{
		Auth:        auth.NewHMACVerifier(jwtSecret, issuer, audience, time.Now),
		Sender:      enqueue.NewSender(sendClient, f.queues.RateLimiter.URL, 10*time.Millisecond),
		Fallback:    f.store,
		Idempotency: idempotency.NewStore(f.ddb.DynamoDB, "idempotency", 24*time.Hour, time.Now),
		Flag:        featureflag.New(f.flagSrc, true, 200*time.Millisecond, f.flagNow.Now, log),
		QueueStats:  f.aws.SQS,
		Redis:       func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		Log:         log,
		Metrics:     metrics.New(f.emf, map[string]string{"Service": "api"}, time.Now),
		Now:         time.Now,
	}
	f.server = f.newServer(serverConfig(nil))
	return f
}

// serverConfig is the configuration the API's default settings give
// (functions/api/setup, where the defaults live), sending available,
// changed by edit.
func serverConfig(edit func(*api.Config)) api.Config {
	cfg := apisetup.Defaults().ServerConfig()
	cfg.Unavailable = ""
	if edit != nil {
		edit(&cfg)
	}
	return cfg
}

func (f *fixture) newServer(cfg api.Config) *api.Server {
	cfg.Queues = queues.URLs{IntakeQueueURL: f.queues.RateLimiter.URL, IntakeDLQURL: f.queues.RateLimiter.DLQURL, WorkflowsQueueURL: f.queues.Workflows.URL, WorkflowsDLQURL: f.queues.Workflows.DLQURL}
	cfg.IdempotencyStale = time.Minute
	s, err := api.New(cfg, f.deps)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

// tokenFor signs a token for sub granted creator-1 (the creator goodBody
// sends as).
func tokenFor(t testing.TB, sub string, exp time.Duration, scope string) string {
	t.Helper()
	return tokenWith(t, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(exp).Unix(), "scope": scope, "creators": []string{"creator-1"}})
}

func tokenWith(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	claims["iss"], claims["aud"] = issuer, audience
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type call struct {
	method, path, body, token, contentType string
	headers                                map[string]string
}

func (f *fixture) do(c call) (*httptest.ResponseRecorder, map[string]any) {
	f.t.Helper()
	r := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.contentType == "" {
		c.contentType = "application/json"
	}
	r.Header.Set("Content-Type", c.contentType)
	if c.token != "" {
		r.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	f.server.ServeHTTP(w, r)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w, out
}

func (f *fixture) send(body, token string) (*httptest.ResponseRecorder, map[string]any) {
	return f.do(call{method: "POST", path: api.PathSend, body: body, token: token})
}

const goodBody = `{"creatorId":"creator-1","recipientId":"fan-9","content":"hello <3 & welcome","priority":"high"}`

func TestSendQueuesOneMessageWithAttributes(t *testing.T) {
	// GIVEN a user with a valid token
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "")

	// WHEN it sends one message
	w, out := f.send(goodBody, tok)

	// THEN 202 with a server-made UUID v4, and the queue holds the payload
	// with the four attributes
	if w.Code != http.StatusAccepted || out["status"] != "queued" {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	id, err := uuid.Parse(out["messageId"].(string))
	if err != nil || id.Version() != 4 {
		t.Fatalf("messageId %v (%v)", out["messageId"], err)
	}
	got := harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)
	if len(got) != 1 {
		t.Fatalf("queue holds %d", len(got))
	}
	msg, err := message.Parse([]byte(aws.ToString(got[0].Body)))
	if err != nil || msg.MessageID != id.String() || msg.UserID != "user-1" || msg.CreatorID != "creator-1" || msg.Content != "hello <3 & welcome" || msg.Priority != "high" {
		t.Fatalf("queued %+v (%v)", msg, err)
	}
	attrs, err := message.AttributesFromSQS(got[0].MessageAttributes)
	msg.CorrelationID = w.Header().Get(api.HeaderCorrelationID) // an attribute, not in the body
	if err != nil || attrs != msg.Attributes() || msg.CorrelationID == "" {
		t.Fatalf("attributes %+v (%v), want %+v", attrs, err, msg.Attributes())
	}
	if !strings.Contains(f.logs.String(), `"message_id":"`+id.String()+`"`) || !strings.Contains(f.emf.String(), `"messages_queued":1`) {
		t.Fatalf("missing send log or metric:\n%s\n%s", f.logs, f.emf)
	}
}

// A batch carries at most one message per creator in each SQS call, so
// that an entry SQS fails never has a later entry of its creator queued
// ahead of it (issue 23): three creators take one SendMessageBatch, one
// creator's three messages take three calls, in order.
func TestSendBatchUsesOneCallPerRoundOfCreators(t *testing.T) {
	f := setup(t)
	tok := tokenWith(t, jwt.MapClaims{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix(), "creators": []string{"c-1", "c-2", "c-3"}})
	mixed := `{"messages":[{"creatorId":"c-1","recipientId":"a","content":"1"},{"creatorId":"c-2","recipientId":"b","content":"2"},{"creatorId":"c-3","recipientId":"c","content":"3"}]}`
	before := f.proxy.Attempts.Load()
	if w, _ := f.send(mixed, tok); w.Code != http.StatusAccepted {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	if calls := f.proxy.Attempts.Load() - before; calls != 1 {
		t.Fatalf("%d send calls for three creators, want one SendMessageBatch", calls)
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)); n != 3 {
		t.Fatalf("queue holds %d", n)
	}
	body := `{"messages":[{"recipientId":"a","content":"1"},{"recipientId":"b","content":"2"},{"recipientId":"c","content":"3"}]}`
	before = f.proxy.Attempts.Load()
	w, _ := f.send(body, tokenFor(t, "user-1", time.Hour, ""))
	var out struct{ Results []api.Result }
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	if w.Code != http.StatusAccepted || len(out.Results) != 3 || out.Results[2].Status != api.StatusQueued {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	if calls := f.proxy.Attempts.Load() - before; calls != 3 {
		t.Fatalf("%d send calls for one creator's three messages, want 3", calls)
	}
	got := harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)
	var texts []string
	for _, m := range got {
		msg, _ := message.Parse([]byte(aws.ToString(m.Body)))
		texts = append(texts, msg.Content)
	}
	if strings.Join(texts, ",") != "1,2,3" {
		t.Fatalf("queue holds %q, want 1,2,3", texts)
	}
}

func TestBadRequestsAreRefusedWithTheFieldAndNothingIsQueued(t *testing.T) {
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "")
	huge := map[string]string{}
	for i := range 50 {
		huge[fmt.Sprint("k", i)] = strings.Repeat("é", 4096)
	}
	hugeBody, _ := json.Marshal(map[string]any{"recipientId": "f", "content": "x", "metadata": huge})
	for _, tc := range []struct {
		name, body, contentType string
		code                    int
		field, reason           string
	}{
		{"wrong content type", goodBody, "text/plain", 415, "", "Content-Type must be application/json"},
		{"not json", `{"content":`, "", 400, "body", "must be a JSON object"},
		{"missing content", `{"recipientId":"f"}`, "", 400, "content", "is required"},
		{"blank content", `{"recipientId":"f","content":"  "}`, "", 400, "content", "must not be blank"},
		{"http media", `{"recipientId":"f","content":"x","mediaUrls":["http://a.example/x"]}`, "", 400, "mediaUrls[0]", "must be an https URL with a host"},
		{"media until attachments exist", `{"recipientId":"f","content":"x","mediaUrls":["https://cdn.example.com/a.jpg"]}`, "", 400, "mediaUrls", "attaching media is not supported yet"},
		{"media in a batch", `{"messages":[{"recipientId":"f","content":"x"},{"recipientId":"f","content":"y","mediaUrls":["https://cdn.example.com/a.jpg"]}]}`, "", 400, "messages[1].mediaUrls", "attaching media is not supported yet"},
		{"bad priority", `{"recipientId":"f","content":"x","priority":"urgent"}`, "", 400, "priority", "must be one of: low normal high"},
		{"client messageId", `{"messageId":"x","recipientId":"f","content":"x"}`, "", 400, "messageId", "is set by the server"},
		{"unknown field", `{"recipientId":"f","content":"x","to":"y"}`, "", 400, "to", "is not a known field"},
		{"batch item", `{"messages":[{"recipientId":"f","content":"x"},{"recipientId":"","content":"x"}]}`, "", 400, "messages[1].recipientId", "is required"},
		{"over the SQS size", string(hugeBody), "", 413, "message", "body and attributes are"},
		{"over the body limit", `{"recipientId":"f","content":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`, "", 413, "", "body exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, out := f.do(call{method: "POST", path: api.PathSend, body: tc.body, token: tok, contentType: tc.contentType})
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.code, w.Body)
			}
			if tc.field == "" {
				if !strings.HasPrefix(out["error"].(string), tc.reason) {
					t.Fatalf("error %q", out["error"])
				}
				return
			}
			fields, _ := out["errors"].([]any)
			for _, x := range fields {
				fe := x.(map[string]any)
				if fe["field"] == tc.field && strings.HasPrefix(fe["reason"].(string), tc.reason) {
					return
				}
			}
			t.Fatalf("errors %v lack %s: %s", fields, tc.field, tc.reason)
		})
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)); n != 0 {
		t.Fatalf("%d messages queued from bad requests", n)
	}
}

func TestAuthentication(t *testing.T) {
	f := setup(t)
	wrongKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "user-1", "iss": issuer, "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("not-the-secret-not-the-secret-!!!"))
	for _, tc := range []struct {
		name, path, method, token, body string
		code                            int
	}{
		{"no token", api.PathSend, "POST", "", goodBody, 401},
		{"expired", api.PathSend, "POST", tokenFor(t, "user-1", -time.Minute, ""), goodBody, 401},
		{"wrong signature", api.PathSend, "POST", wrongKey, goodBody, 401},
		{"other user's userId", api.PathSend, "POST", tokenFor(t, "user-1", time.Hour, ""), `{"userId":"user-2","recipientId":"f","content":"x"}`, 403},
		{"own userId", api.PathSend, "POST", tokenFor(t, "user-1", time.Hour, ""), `{"userId":"user-1","recipientId":"f","content":"x"}`, 202},
		{"status without token", api.PathStatus, "GET", "", "", 401},
		{"replay without admin scope", api.PathReplay, "POST", tokenFor(t, "user-1", time.Hour, "messages:send"), "", 403},
		{"replay with admin scope", api.PathReplay, "POST", tokenFor(t, "ops", time.Hour, "admin"), "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := f.do(call{method: tc.method, path: tc.path, body: tc.body, token: tc.token})
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.code, w.Body)
			}
		})
	}
}

func TestQueueOutageRetriesThreeTimesThenStoresAndReplaysExactlyOnce(t *testing.T) {
	// GIVEN a queue that answers every send with a 500
	f := setup(t)
	f.proxy.Failing.Store(true)
	before := f.proxy.Attempts.Load()

	// WHEN a message is sent
	w, out := f.send(goodBody, tokenFor(t, "user-1", time.Hour, ""))

	// THEN the SDK tried 4 times (1 + 3 retries), the answer is 500 with the
	// messageId, and the fallback table holds it as pending
	if got := f.proxy.Attempts.Load() - before; got != enqueue.MaxAttempts {
		t.Fatalf("send attempts = %d, want %d", got, enqueue.MaxAttempts)
	}
	if w.Code != http.StatusInternalServerError || out["status"] != api.StatusStoredForReplay {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	id := out["messageId"].(string)
	items, err := f.store.Claimable(context.Background(), 10)
	if err != nil || len(items) != 1 || items[0].MessageID != id || items[0].Status != fallback.StatusPending || items[0].Attempts != 4 || !strings.Contains(items[0].LastError, "injected") || items[0].ExpiresAt != 0 {
		// ExpiresAt: a pending item carries no TTL (never deleted unsent).
		t.Fatalf("fallback items %+v (%v)", items, err)
	}
	if !strings.Contains(f.emf.String(), `"fallback_stored":1`) {
		t.Fatalf("no fallback metric: %s", f.emf)
	}

	// WHEN replay runs while the queue still fails
	res, err := api.Replay(context.Background(), f.deps, 10)
	// THEN the item stays pending with its attempts counted
	items, _ = f.store.Claimable(context.Background(), 10)
	if err != nil || res.Failed != 1 || len(items) != 1 || items[0].Attempts != 5 {
		t.Fatalf("replay during outage: %+v %v, items %+v", res, err, items)
	}

	// WHEN the queue recovers and two replays race
	f.proxy.Failing.Store(false)
	var wg sync.WaitGroup
	results := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := api.Replay(context.Background(), f.deps, 10)
			if err != nil {
				t.Error(err)
			}
			results[i] = r.Replayed
		}()
	}
	wg.Wait()

	// THEN the message is queued exactly once and nothing is pending
	got := harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)
	if len(got) != 1 || results[0]+results[1] != 1 {
		t.Fatalf("queue holds %d, replays reported %v", len(got), results)
	}
	if msg, _ := message.Parse([]byte(aws.ToString(got[0].Body))); msg.MessageID != id {
		t.Fatalf("replayed %s, want %s", msg.MessageID, id)
	}
	if n, _ := f.store.PendingCount(context.Background()); n != 0 {
		t.Fatalf("%d still pending", n)
	}
	// and the replayed item's TTL starts only now
	out2, err := f.ddb.DynamoDB.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("fallback"), Key: map[string]ddbtypes.AttributeValue{fallback.KeyAttribute: &ddbtypes.AttributeValueMemberS{Value: id}}, ConsistentRead: aws.Bool(true)})
	if err != nil || out2.Item[fallback.TTLAttribute] == nil {
		t.Fatalf("replayed item without its TTL: %v %v", out2, err)
	}
}

func TestIdempotencyKeyQueuesOneCopy(t *testing.T) {
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "")
	c := call{method: "POST", path: api.PathSend, body: goodBody, token: tok, headers: map[string]string{"Idempotency-Key": "order-42"}}

	// WHEN the same keyed request is sent twice
	w1, out1 := f.do(c)
	w2, out2 := f.do(c)

	// THEN both answers are the same and one message is queued
	if w1.Code != 202 || w2.Code != 202 || out1["messageId"] != out2["messageId"] || w2.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("answers %d %v / %d %v", w1.Code, out1, w2.Code, out2)
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)); n != 1 {
		t.Fatalf("queue holds %d, want 1", n)
	}
	// AND the key with another body is refused
	c.body = strings.Replace(goodBody, "hello", "bye", 1)
	if w, _ := f.do(c); w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("reused key: %d %s", w.Code, w.Body)
	}
}

// The flag is applied by the limiter (issue 23: sending straight to the
// workflows queue let new messages overtake those still in the intake
// queue): the API queues every message on the intake queue whatever the
// flag says, and reports the flag in the status, changed without a restart.
func TestFlagOffStillQueuesOnTheIntakeQueueSoNothingOvertakes(t *testing.T) {
	// GIVEN the flag parameter on
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "")
	admin := tokenFor(t, "ops-1", time.Hour, "admin")
	f.flagSrc.v.Store("true")
	f.do(call{method: "GET", path: api.PathStatus, token: admin})
	f.send(goodBody, tok)

	// WHEN it is switched off, and the cache TTL (200 ms) passes
	f.flagSrc.v.Store("false")
	f.flagNow.Advance(250 * time.Millisecond)
	_, st := f.do(call{method: "GET", path: api.PathStatus, token: admin})
	f.send(goodBody, tok)

	// THEN both messages are on the intake queue, in order, none on the
	// workflows queue, and the status shows the flag off
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)); n != 2 {
		t.Fatalf("rate limiter queue holds %d, want 2", n)
	}
	if n := len(harness.Drain(t, f.aws.SQS, f.queues.Workflows.URL)); n != 0 {
		t.Fatalf("the API sent %d straight to the workflows queue", n)
	}
	if st["rateLimiterEnabled"] != false {
		t.Fatalf("status %v", st)
	}
	if !strings.Contains(f.logs.String(), `"msg":"rate limiter flag changed","enabled":false`) {
		t.Fatalf("flag change not logged:\n%s", f.logs)
	}
}

func TestUnconfiguredSendsAnswer503WithTheReason(t *testing.T) {
	f := setup(t)
	f.server = f.newServer(serverConfig(func(c *api.Config) { c.Unavailable = "INTAKE_QUEUE_URL is not set" }))
	w, out := f.send(goodBody, tokenFor(t, "user-1", time.Hour, ""))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(out["error"].(string), "INTAKE_QUEUE_URL is not set") {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
}

func TestStatusReportsHealthThenAStoppedRedisAndADeadLetter(t *testing.T) {
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "ops")
	status := func() (int, api.StatusResponse) {
		w, _ := f.do(call{method: "GET", path: api.PathStatus, token: tok})
		var st api.StatusResponse
		_ = json.Unmarshal(w.Body.Bytes(), &st)
		return w.Code, st
	}
	// GIVEN a healthy system
	if code, st := status(); code != 200 || !st.Healthy || st.Redis != "ok" || len(st.Queues) != 4 || !st.RateLimiterEnabled {
		t.Fatalf("healthy: %d %+v", code, st)
	}
	// WHEN Redis stops and a message lands in a DLQ
	f.redis.Stop()
	if _, err := f.aws.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(f.queues.RateLimiter.DLQURL), MessageBody: aws.String("{}"), MessageGroupId: aws.String("g"), MessageDeduplicationId: aws.String("d")}); err != nil {
		t.Fatal(err)
	}
	// THEN the status is 503 with both reasons
	code, st := status()
	reasons := strings.Join(st.Reasons, "; ")
	if code != 503 || st.Healthy || st.Redis != "unreachable" || !strings.Contains(reasons, "redis unreachable") || !strings.Contains(reasons, "dead-letter queue "+queues.Name(queues.RateLimiterDLQBase, "test")+" holds 1 messages") {
		t.Fatalf("degraded: %d %+v", code, st)
	}
}

func TestCrossTenantSendsAreRefusedAndGrantedOnesAccepted(t *testing.T) {
	// GIVEN user B, whose token grants creator-b only
	f := setup(t)
	exp := time.Now().Add(time.Hour).Unix()
	grantB := tokenWith(t, jwt.MapClaims{"sub": "user-b", "exp": exp, "creators": []string{"creator-b"}})
	noClaim := tokenWith(t, jwt.MapClaims{"sub": "user-b", "exp": exp})
	emptyClaim := tokenWith(t, jwt.MapClaims{"sub": "user-b", "exp": exp, "creators": []string{}})
	service := tokenWith(t, jwt.MapClaims{"sub": "jobs", "exp": exp, "scope": apisetup.Defaults().ServiceScope})
	one := func(creator string) string {
		if creator == "" {
			return `{"recipientId":"fan-1","content":"hi"}`
		}
		return `{"creatorId":"` + creator + `","recipientId":"fan-1","content":"hi"}`
	}
	cases := []struct {
		name, token, body string
		code              int
		field             string
	}{
		{"another creator", grantB, one("creator-a"), 403, "creatorId"},
		{"the granted creator", grantB, one("creator-b"), 202, ""},
		{"no creatorId: sends as itself", grantB, one(""), 202, ""},
		{"itself named as creator", grantB, one("user-b"), 202, ""},
		{"batch with one foreign item", grantB, `{"messages":[` + one("creator-b") + `,` + one("creator-a") + `]}`, 403, "messages[1].creatorId"},
		{"missing claim", noClaim, one("creator-b"), 403, "creatorId"},
		{"empty claim", emptyClaim, one("creator-b"), 403, "creatorId"},
		{"service scope, any creator", service, one("creator-a"), 202, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.URL)
			w, out := f.send(tc.body, tc.token)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.code, w.Body)
			}
			queued := harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.URL) - before
			if tc.code == 403 {
				errs, _ := out["errors"].([]any)
				if len(errs) != 1 || errs[0].(map[string]any)["field"] != tc.field || queued != 0 {
					t.Fatalf("403 fields %v, %d queued", out["errors"], queued)
				}
			} else if queued < 1 {
				t.Fatalf("accepted but nothing queued")
			}
		})
	}
}

func TestAKeyReusedAfterItsRecordExpiredGetsNewMessageIDs(t *testing.T) {
	// GIVEN a keyed send
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "")
	keyed := func() map[string]any {
		w, out := f.do(call{method: "POST", path: api.PathSend, body: goodBody, token: tok, headers: map[string]string{"Idempotency-Key": "k-1"}})
		if w.Code != 202 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		return out
	}
	first := keyed()
	// WHEN its record expires (TTL deletes it) and the key is used again
	if _, err := f.ddb.DynamoDB.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String("idempotency"),
		Key: map[string]ddbtypes.AttributeValue{idempotency.KeyAttribute: &ddbtypes.AttributeValueMemberS{Value: "user-1\x00k-1"}}}); err != nil {
		t.Fatal(err)
	}
	second := keyed()
	// THEN the new message has a new id: the scraper would otherwise take it
	// for the earlier one and delete it as already sent
	if first["messageId"] == second["messageId"] {
		t.Fatalf("same messageId %v after the record expired", first["messageId"])
	}
}

func TestAKeyedRequestThatStoredNothingIsNotCachedAndItsRetrySendsTheSameIDs(t *testing.T) {
	// GIVEN SQS down and the fallback table gone
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "")
	f.proxy.Failing.Store(true)
	if _, err := f.ddb.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String("fallback")}); err != nil {
		t.Fatal(err)
	}
	body := `{"messages":[` + goodBody + `,` + goodBody + `]}`
	req := call{method: "POST", path: api.PathSend, body: body, token: tok, headers: map[string]string{"Idempotency-Key": "batch-1"}}
	// WHEN a keyed batch is sent
	w, out := f.do(req)
	if w.Code != 503 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	firstIDs := []any{out["results"].([]any)[0].(map[string]any)["messageId"], out["results"].([]any)[1].(map[string]any)["messageId"]}
	// AND SQS and the table come back and the client retries with the
	// same key (while the table is gone the creator's order cannot be
	// checked, so nothing is sent: 503 again)
	f.proxy.Failing.Store(false)
	if w, _ := f.do(req); w.Code != 503 {
		t.Fatalf("retry without the fallback table: %d %s", w.Code, w.Body)
	}
	if err := emulator.CreateFallbackTable(context.Background(), f.ddb.DynamoDB, "fallback"); err != nil {
		t.Fatal(err)
	}
	w, out = f.do(req)
	// THEN the retry is not the cached 503: both messages are queued, with
	// the ids the first answer gave
	if w.Code != 202 || w.Header().Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry: status %d replayed %q: %s", w.Code, w.Header().Get("Idempotent-Replayed"), w.Body)
	}
	for i, r := range out["results"].([]any) {
		if r.(map[string]any)["messageId"] != firstIDs[i] || r.(map[string]any)["status"] != api.StatusQueued {
			t.Fatalf("result %d = %v, want queued with id %v", i, r, firstIDs[i])
		}
	}
	if n := harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.URL); n != 2 {
		t.Fatalf("queue holds %d, want 2", n)
	}
	// AND a third try is the stored answer and queues nothing more
	w, _ = f.do(req)
	if w.Code != 202 || w.Header().Get("Idempotent-Replayed") != "true" || harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.URL) != 2 {
		t.Fatalf("third try: %d %q", w.Code, w.Header().Get("Idempotent-Replayed"))
	}
}

func TestBadInputCorpusIsRefusedWithTheFieldNamed(t *testing.T) {
	f := setup(t)
	// granted even the malformed creator id: the format check must refuse it
	tok := tokenWith(t, jwt.MapClaims{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix(), "creators": []string{"creator 1"}})
	long := strings.Repeat("x", 500)
	cases := []struct{ name, body, field string }{
		{"U+FFFE in content", `{"recipientId":"fan-1","content":"hi \ufffe"}`, "content"},
		{"U+FFFF in content", `{"recipientId":"fan-1","content":"\uffff"}`, "content"},
		{"NUL in content", `{"recipientId":"fan-1","content":"a\u0000b"}`, "content"},
		{"dot-dot recipient", `{"recipientId":"..","content":"hi"}`, "recipientId"},
		{"path in recipient", `{"recipientId":"fan/../admin","content":"hi"}`, "recipientId"},
		{"NUL in recipient", `{"recipientId":"fan\u0000","content":"hi"}`, "recipientId"},
		{"control in recipient", `{"recipientId":"fan\u0007","content":"hi"}`, "recipientId"},
		{"space in creator", `{"creatorId":"creator 1","recipientId":"fan-1","content":"hi"}`, "creatorId"},
		{"control in metadata", `{"recipientId":"fan-1","content":"hi","metadata":{"k":"\u0001"}}`, "metadata[k]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, out := f.send(tc.body, tok)
			errs, _ := out["errors"].([]any)
			if w.Code != 400 || len(errs) == 0 || errs[0].(map[string]any)["field"] != tc.field {
				t.Fatalf("status %d, want 400 naming %s: %s", w.Code, tc.field, w.Body)
			}
		})
	}
	t.Run("unknown field name is cut", func(t *testing.T) {
		w, out := f.send(`{"recipientId":"fan-1","content":"hi","`+long+`":1}`, tok)
		errs, _ := out["errors"].([]any)
		if w.Code != 400 || len(errs) != 1 || len([]rune(errs[0].(map[string]any)["field"].(string))) > 65 || strings.Contains(f.logs.String(), long) {
			t.Fatalf("status %d: %.200s", w.Code, w.Body)
		}
	})
}

func TestStatusNeedsTheAdminOrOpsScope(t *testing.T) {
	f := setup(t)
	for _, tc := range []struct {
		scope string
		want  int
	}{{"", 403}, {"messages:send", 403}, {"ops", 200}, {"admin", 200}} {
		w, _ := f.do(call{method: "GET", path: api.PathStatus, token: tokenFor(t, "someone", time.Hour, tc.scope)})
		if w.Code != tc.want {
			t.Errorf("scope %q: status %d, want %d", tc.scope, w.Code, tc.want)
		}
	}
}

func TestBackpressurePerCallerAndPerCreatorAnswers429WithRetryAfter(t *testing.T) {
	// GIVEN backpressure with 3 requests per hour per caller and 4 messages
	// waiting per creator (draining one per hour)
	f := setup(t)
	f.deps.Quota = quota.NewStore(f.ddb.DynamoDB, "idempotency", idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now)
	f.server = f.newServer(serverConfig(func(c *api.Config) {
		c.CallerRequests, c.CallerWindow, c.CreatorWaiting, c.CreatorDrain = 3, time.Hour, 4, time.Hour
	}))
	tok := tokenFor(t, "user-1", time.Hour, "")
	batch3 := `{"messages":[` + goodBody + `,` + goodBody + `,` + goodBody + `]}`

	// WHEN a caller sends 3 messages, then 2 more for the same creator
	if w, _ := f.send(batch3, tok); w.Code != 202 {
		t.Fatalf("first batch: %d %s", w.Code, w.Body)
	}
	w, out := f.send(`{"messages":[`+goodBody+`,`+goodBody+`]}`, tok)
	// THEN the creator's cap refuses the second request whole, with the reason
	if w.Code != 429 || w.Header().Get("Retry-After") == "" || !strings.Contains(out["error"].(string), "creator creator-1 has about 4 messages waiting") {
		t.Fatalf("over the creator cap: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if n := harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.URL); n != 3 {
		t.Fatalf("queue holds %d, want 3", n)
	}
	// AND the caller's third request passes (one message fits), the fourth is
	// refused by the caller's rate
	if w, _ := f.send(goodBody, tok); w.Code != 202 {
		t.Fatalf("third request: %d %s", w.Code, w.Body)
	}
	w, _ = f.send(goodBody, tok)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the caller rate: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// AND another caller is not affected by the first caller's rate
	if w, _ := f.send(`{"recipientId":"fan-1","content":"hi"}`, tokenFor(t, "user-2", time.Hour, "")); w.Code != 202 {
		t.Fatalf("other caller: %d %s", w.Code, w.Body)
	}
}

func TestSQSErrorsOfEachKindAreRetriedOrNotThenStoredWithTheirCause(t *testing.T) {
	// Seed 000 R6.1–R6.4, R8.4: throttling and network failures are retried
	// 3 times with backoff; permission and credential errors are not (a retry
	// cannot fix them); every failed message is stored for replay (500), and
	// the log line names the message and the cause.
	cases := []struct {
		kind     harness.FaultKind
		attempts int32
		cause    string
	}{
		{harness.FaultThrottling, 4, "RequestThrottled"},
		{harness.FaultNetwork, 4, "request send failed"},
		{harness.FaultAccessDenied, 1, "AccessDeniedException"},
		{harness.FaultInvalidCredentials, 1, "UnrecognizedClientException"},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			f := setup(t)
			f.proxy.Kind.Store(tc.kind)
			f.proxy.Failing.Store(true)
			before := f.proxy.Attempts.Load()
			w, out := f.send(goodBody, tokenFor(t, "user-1", time.Hour, ""))
			if got := f.proxy.Attempts.Load() - before; got != tc.attempts {
				t.Errorf("attempts %d, want %d", got, tc.attempts)
			}
			if w.Code != http.StatusInternalServerError || out["status"] != api.StatusStoredForReplay {
				t.Fatalf("answer %d %s, want 500 stored_for_replay", w.Code, w.Body)
			}
			var logged map[string]any
			for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "message send" {
					logged = m
				}
			}
			if logged == nil || logged["message_id"] != out["messageId"] || logged["outcome"] != api.StatusStoredForReplay || !strings.Contains(fmt.Sprint(logged["error"]), tc.cause) {
				t.Fatalf("log line %v, want message_id, outcome and a cause naming %s", logged, tc.cause)
			}
		})
	}
}
