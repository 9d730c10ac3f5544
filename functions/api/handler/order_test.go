package handler_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/golang-jwt/jwt/v5"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/test/harness"
)

// opCounter counts the DynamoDB calls a client makes, by operation.
type opCounter struct {
	mu  sync.Mutex
	ops map[string]int
}

func (c *opCounter) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("CountCalls",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.ops[awsmiddleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

func (c *opCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.ops
	c.ops = map[string]int{}
	return old
}

// intakeByCreator drains the intake queue: each creator's texts in order.
func intakeByCreator(t *testing.T, f *fixture) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL) {
		msg, _ := message.Parse([]byte(aws.ToString(m.Body)))
		out[msg.CreatorKey()] = append(out[msg.CreatorKey()], msg.Content)
	}
	return out
}

// Issue 23: a message stored in the fallback table during an SQS outage was
// replayed after the creator's messages accepted once SQS was back. Now,
// while a creator has messages waiting there, its new ones are stored behind
// them (202, stored_for_replay) and the replay queues them all in
// acceptance order; other creators go straight to SQS; once the backlog is
// replayed, the creator's messages go straight to SQS again. Reading the
// backlog is the one DynamoDB call a send adds.
func TestWhileACreatorsMessagesWaitInTheFallbackTableItsNewOnesJoinThem(t *testing.T) {
	f := setup(t)
	ops := &opCounter{ops: map[string]int{}}
	ddb := dynamodb.New(f.ddb.DynamoDB.Options(), ops.option)
	f.deps.Fallback = fallback.NewStore(ddb, "fallback", time.Now, 30*time.Second)
	f.deps.Quota = quota.NewStore(ddb, "idempotency", idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now)
	f.server = f.newServer(serverConfig(nil))
	tok := tokenWith(t, jwt.MapClaims{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix(), "creators": []string{"c-1", "c-2"}})
	send := func(creator, text string) (int, api.Result) {
		t.Helper()
		w, _ := f.send(`{"creatorId":"`+creator+`","recipientId":"fan-1","content":"`+text+`"}`, tok)
		var r api.Result
		_ = json.Unmarshal(w.Body.Bytes(), &r)
		return w.Code, r
	}

	// The common path: caller quota, creator quota, and the backlog read.
	ops.reset()
	if code, r := send("c-1", "m0"); code != 202 || r.Status != api.StatusQueued {
		t.Fatalf("m0: %d %+v", code, r)
	}
	if got := ops.reset(); got["BatchGetItem"] != 1 || got["UpdateItem"] != 2 || len(got) != 2 {
		t.Fatalf("DynamoDB calls of one send: %v, want the 2 quota updates and 1 backlog read", got)
	}
	f.proxy.Failing.Store(true)
	if code, r := send("c-1", "m1"); code != 500 || r.Status != api.StatusStoredForReplay {
		t.Fatalf("m1 during the outage: %d %+v", code, r)
	}
	f.proxy.Failing.Store(false)
	for _, m := range []string{"m2", "m3"} {
		if code, r := send("c-1", m); code != 202 || r.Status != api.StatusStoredForReplay || !strings.Contains(r.Error, "in order") {
			t.Fatalf("%s behind the backlog: %d %+v", m, code, r)
		}
	}
	if code, r := send("c-2", "x0"); code != 202 || r.Status != api.StatusQueued {
		t.Fatalf("another creator: %d %+v", code, r)
	}
	if got := intakeByCreator(t, f); strings.Join(got["c-1"], ",") != "m0" || strings.Join(got["c-2"], ",") != "x0" {
		t.Fatalf("intake before the replay: %v", got)
	}
	if res, err := api.Replay(context.Background(), f.deps, 100); err != nil || res.Replayed != 3 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	if code, r := send("c-1", "m4"); code != 202 || r.Status != api.StatusQueued {
		t.Fatalf("m4 after the backlog was replayed: %d %+v", code, r)
	}
	if got := intakeByCreator(t, f); strings.Join(got["c-1"], ",") != "m1,m2,m3,m4" {
		t.Fatalf("intake after the replay: %v, want m1,m2,m3,m4", got)
	}
}

// Issue 23: a request holding more messages for one creator than
// CREATOR_WAITING_CAP made the quota store fail, which let it through. Now
// it is refused with 413 naming the cap, store up or down; only a store
// that does not answer skips the cap, logged and counted.
func TestCapsRefuseWhatCanNeverFitAndAreSkippedOnlyWhenTheStoreIsDown(t *testing.T) {
	f := setup(t)
	cfg := serverConfig(func(c *api.Config) { c.CreatorWaiting, c.CreatorDrain = 3, time.Hour })
	f.deps.Quota = quota.NewStore(f.ddb.DynamoDB, "idempotency", idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now)
	f.server = f.newServer(cfg)
	tok := tokenFor(t, "user-1", time.Hour, "")
	batch := func(n int) string {
		return `{"messages":[` + strings.TrimSuffix(strings.Repeat(goodBody+",", n), ",") + `]}`
	}
	check413 := func(when string) {
		t.Helper()
		w, out := f.send(batch(4), tok)
		if w.Code != 413 || !strings.Contains(out["error"].(string), "CREATOR_WAITING_CAP allows 3") || !strings.Contains(w.Body.String(), `"field":"messages"`) {
			t.Fatalf("%s: 4 messages over a cap of 3: %d %s", when, w.Code, w.Body)
		}
		if n := harness.QueueDepth(f.aws.SQS, f.queues.RateLimiter.URL); n != 0 {
			t.Fatalf("%s: %d queued by a refused request", when, n)
		}
	}
	check413("store up")

	// The quota store down (its table missing): the cap cannot be read.
	f.deps.Quota = quota.NewStore(f.ddb.DynamoDB, "no-such-table", idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now)
	f.server = f.newServer(cfg)
	check413("store down")
	if w, _ := f.send(batch(2), tok); w.Code != 202 {
		t.Fatalf("store down, 2 messages: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(f.logs.String(), "creator quota unavailable; not enforced") || !strings.Contains(f.logs.String(), "caller quota unavailable; not enforced") {
		t.Fatalf("the skipped caps were not logged:\n%s", f.logs)
	}
	if !strings.Contains(f.emf.String(), api.MetricQuotaUnavailable) {
		t.Fatalf("the skipped caps were not counted:\n%s", f.emf)
	}
}
