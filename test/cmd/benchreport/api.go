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
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/golang-jwt/jwt/v5"

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
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/test/harness"
)

// The benchmark's own token issuer (HS256, verified in process).
const (
	benchSecret   = "benchreport-secret-benchreport-secret!"
	benchIssuer   = "https://bench.huntaze.test/"
	benchAudience = "huntaze-api"
)

type throughput struct {
	perSecond float64
	p50, p99  time.Duration
}

func measure(n int, f func(i int)) throughput {
	lat := make([]time.Duration, n)
	start := time.Now()
	for i := range n {
		s := time.Now()
		f(i)
		lat[i] = time.Since(s)
	}
	total := time.Since(start)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return throughput{perSecond: float64(n) / total.Seconds(), p50: lat[n/2], p99: lat[n*99/100]}
}

type apiFigures struct {
	api, raw, rawBatch throughput
	// messages/s with 8 concurrent clients: the API as deployed (with
	// backpressure), the API without backpressure, raw SendMessage
	apiConc, apiConcNoQuota, rawConc float64
}

// concurrent runs f n times from workers goroutines and returns calls/s.
func concurrent(n, workers int, f func(i int)) float64 {
	var wg sync.WaitGroup
	next := make(chan int)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// measureAPI compares POST /send over HTTP (JWT check, validation, one
// SendMessage) with a bare SendMessage of the same payload, and
// SendMessageBatch of 10, against the same fauxqs in the same run.
func measureAPI(t harness.T, n int) apiFigures {
	f := harness.StartFauxqs(t)
	d := harness.StartDynalite(t)
	sys := f.CreateQueues(t, "bench")
	plain, withQuota := benchServers(t, f, d, sys.RateLimiter.URL)
	var handler http.Handler = withQuota
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	// 50 creators, sent as by one backend token with the service scope.
	token := svcToken()
	client := hs.Client()
	var out apiFigures
	post := func(i int) {
		body := []byte(fmt.Sprintf(`{"creatorId":"creator-%d","recipientId":"fan-1","content":"benchmark message"}`, i%50))
		req, _ := http.NewRequest("POST", hs.URL+api.PathSend, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("api: %v %v", err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	out.api = measure(n, post)
	out.apiConc = concurrent(n, 8, post)
	handler = plain
	out.apiConcNoQuota = concurrent(n, 8, post)
	measureRaw(t, f, sys.RateLimiter.URL, n, &out)
	return out
}

// svcToken is a backend token with the service scope (sends as any creator).
func svcToken() string {
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bench-jobs", "iss": benchIssuer, "aud": benchAudience,
		"exp": time.Now().Add(time.Hour).Unix(), "scope": apisetup.Defaults().ServiceScope}).SignedString([]byte(benchSecret))
	return s
}

// benchServers are the API without and with the per-creator quota, over
// the queue at queueURL and tables in d.
func benchServers(t harness.T, f *harness.Fauxqs, d *harness.Dynalite, queueURL string) (plain, withQuota http.Handler) {
	ctx := context.Background()
	for _, tbl := range []struct{ name, key string }{{"fallback-bench", fallback.KeyAttribute}, {"idem-bench", idempotency.KeyAttribute}} {
		if err := emulator.CreateTable(ctx, d.DynamoDB, tbl.name, tbl.key); err != nil {
			t.Fatalf("%v", err)
		}
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	deps := api.Deps{
		Auth:        auth.NewHMACVerifier([]byte(benchSecret), benchIssuer, benchAudience, time.Now),
		Sender:      enqueue.NewSender(f.SQS, queueURL, 10*time.Millisecond),
		Fallback:    fallback.NewStore(d.DynamoDB, "fallback-bench", time.Now, time.Minute),
		Idempotency: idempotency.NewStore(d.DynamoDB, "idem-bench", time.Hour, time.Now),
		Flag:        featureflag.New(nil, true, time.Minute, time.Now, log), QueueStats: f.SQS,
		Log: log, Metrics: metrics.New(io.Discard, nil, time.Now), Now: time.Now,
	}
	cfg := apisetup.Defaults().ServerConfig()
	cfg.Unavailable = ""
	plain, err := api.New(cfg, deps)
	if err != nil {
		t.Fatalf("%v", err)
	}
	deps.Quota = quota.NewStore(d.DynamoDB, "idem-bench", idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now)
	cfg.CallerRequests = 1_000_000
	withQuota, err = api.New(cfg, deps)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return plain, withQuota
}

// measureRaw measures SendMessage and SendMessageBatch alone (the
// baselines) into out.
func measureRaw(t harness.T, f *harness.Fauxqs, queueURL string, n int, out *apiFigures) {
	ctx := context.Background()
	m, _ := message.New("user-bench", "fan-1", "benchmark message", time.Now())
	raw, attrs, _ := enqueue.Body(m)
	send := func(i int) {
		if _, err := f.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(raw), MessageAttributes: attrs,
			MessageGroupId: aws.String(fmt.Sprint("creator-", i%50)), MessageDeduplicationId: aws.String(fmt.Sprint("raw-", time.Now().UnixNano(), "-", i))}); err != nil {
			t.Fatalf("raw: %v", err)
		}
	}
	out.raw = measure(n, send)
	out.rawConc = concurrent(n, 8, send)
	batches := measure(n/10, func(int) {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL)}
		for i := range 10 {
			in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(i)), MessageBody: aws.String(raw), MessageAttributes: attrs,
				MessageGroupId: aws.String(fmt.Sprint("creator-", i)), MessageDeduplicationId: aws.String(fmt.Sprint("batch-", time.Now().UnixNano(), "-", i))})
		}
		if _, err := f.SQS.SendMessageBatch(ctx, in); err != nil {
			t.Fatalf("batch: %v", err)
		}
	})
	out.rawBatch = throughput{perSecond: batches.perSecond * 10, p50: batches.p50, p99: batches.p99}
}
