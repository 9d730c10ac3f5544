package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	api "github.com/huntaze/message-pipeline/functions/api/handler"
	apisetup "github.com/huntaze/message-pipeline/functions/api/setup"
	"github.com/huntaze/message-pipeline/internal/auth"
	"github.com/huntaze/message-pipeline/internal/enqueue"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/featureflag"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/test/harness"
)

// countingHTTP counts the AWS calls made through it by operation
// (X-Amz-Target: "DynamoDB_20120810.UpdateItem", "AmazonSQS.SendMessage").
type countingHTTP struct {
	next aws.HTTPClient
	mu   sync.Mutex
	ops  map[string]int
}

func (c *countingHTTP) Do(r *http.Request) (*http.Response, error) {
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	c.mu.Lock()
	c.ops[op]++
	c.mu.Unlock()
	return c.next.Do(r)
}

func (c *countingHTTP) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.ops
	c.ops = map[string]int{}
	return out
}

// callCounts are the AWS calls per accepted message of one request shape.
type callCounts struct {
	shape    string
	messages int
	ops      map[string]int
}

func (c callCounts) perMessage() float64 {
	n := 0
	for _, v := range c.ops {
		n += v
	}
	return float64(n) / float64(c.messages)
}

func (c callCounts) opsText() string {
	var names []string
	for k := range c.ops {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(c.ops[k])/float64(c.messages)))
	}
	return strings.Join(parts, ", ")
}

// measureCalls counts the AWS calls of the API as deployed (backpressure
// on, the flag from the environment) per accepted message, with counting
// HTTP clients under the real SDK clients talking to fauxqs and dynalite:
// single messages without an Idempotency-Key, 10 creators sending in turn,
// after a first round that makes each creator's quota key busy (messages
// waiting, as for a creator sending faster than its limit); then batches
// of 10 for one creator, and batches of 10 for 10 creators.
func measureCalls(t harness.T, rounds int) []callCounts {
	f := harness.StartFauxqs(t)
	d := harness.StartDynalite(t)
	sys := f.CreateQueues(t, "calls")
	ctx := context.Background()
	for _, tbl := range []struct{ name, key string }{{"fallback-calls", fallback.KeyAttribute}, {"idem-calls", idempotency.KeyAttribute}} {
		if err := emulator.CreateTable(ctx, d.DynamoDB, tbl.name, tbl.key); err != nil {
			t.Fatalf("%v", err)
		}
	}
	hs, counter := countedServer(t, f, d, sys.RateLimiter.URL)
	defer hs.Close()
	token := svcToken()
	post := func(body string) {
		req, _ := http.NewRequest("POST", hs.URL+api.PathSend, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hs.Client().Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send: %v %v", err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for i := range 10 { // every creator's quota key busy from here on
		post(callsMessage(fmt.Sprint("creator-", i)))
	}
	counter.take()
	var out []callCounts
	for i := range rounds * 10 {
		post(callsMessage(fmt.Sprint("creator-", i%10)))
	}
	out = append(out, callCounts{"single message, no Idempotency-Key", rounds * 10, counter.take()})
	for range rounds {
		post(callsBatch(func(int) string { return "creator-0" }))
	}
	out = append(out, callCounts{"batch of 10, one creator", rounds * 10, counter.take()})
	for range rounds {
		post(callsBatch(func(i int) string { return fmt.Sprint("creator-", i) }))
	}
	out = append(out, callCounts{"batch of 10, 10 creators", rounds * 10, counter.take()})
	return out
}

// dynamoDBUnits are the request units per message on DynamoDB on-demand:
// a write of an item under 1 KB is one write unit (a failed conditional
// write too); a consistent read of an item under 4 KB one read unit (the
// single-message shape reads one item per call).
func (c callCounts) dynamoDBUnits() (wru, rru float64) {
	for op, n := range c.ops {
		switch op {
		case "UpdateItem", "PutItem", "DeleteItem":
			wru += float64(n)
		case "GetItem", "BatchGetItem":
			rru += float64(n)
		}
	}
	return wru / float64(c.messages), rru / float64(c.messages)
}

// sqsCalls are the SQS requests per message.
func (c callCounts) sqsCalls() float64 {
	n := 0
	for op, v := range c.ops {
		if strings.HasPrefix(op, "SendMessage") {
			n += v
		}
	}
	return float64(n) / float64(c.messages)
}

// countedServer is the API over the queue at queueURL and tables in d,
// with every AWS call of its clients counted.
func countedServer(t harness.T, f *harness.Fauxqs, d *harness.Dynalite, queueURL string) (*httptest.Server, *countingHTTP) {
	counter := &countingHTTP{next: awshttp.NewBuildableClient(), ops: map[string]int{}}
	cfg := emulator.LocalAWS(emulator.Endpoints{"SQS": f.Endpoint, "DynamoDB": d.Endpoint})
	cfg.HTTPClient = counter
	sqsc, ddb := sqs.NewFromConfig(cfg), dynamodb.NewFromConfig(cfg)
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	deps := api.Deps{
		Auth:   auth.NewHMACVerifier([]byte(benchSecret), benchIssuer, benchAudience, time.Now),
		Sender: enqueue.NewSender(sqsc, queueURL, 10*time.Millisecond), Fallback: fallback.NewStore(ddb, "fallback-calls", time.Now, time.Minute),
		Idempotency: idempotency.NewStore(ddb, "idem-calls", time.Hour, time.Now),
		Quota:       quota.NewStore(ddb, "idem-calls", idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now),
		Flag:        featureflag.New(nil, true, time.Minute, time.Now, log), QueueStats: sqsc,
		Log: log, Metrics: metrics.New(io.Discard, nil, time.Now), Now: time.Now,
	}
	scfg := apisetup.Defaults().ServerConfig()
	scfg.Unavailable = ""
	scfg.CallerRequests = 1_000_000
	srv, err := api.New(scfg, deps)
	if err != nil {
		t.Fatalf("%v", err)
	}
	hs := httptest.NewServer(srv)
	return hs, counter
}

// callsMessage is the body of one message for creator.
func callsMessage(creator string) string {
	return fmt.Sprintf(`{"creatorId":%q,"recipientId":"fan-1","content":"calls per message"}`, creator)
}

// callsBatch is the body of a batch of 10 messages, the i-th for creator(i).
func callsBatch(creator func(i int) string) string {
	var b bytes.Buffer
	b.WriteString(`{"messages":[`)
	for i := range 10 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(callsMessage(creator(i)))
	}
	b.WriteString(`]}`)
	return b.String()
}
