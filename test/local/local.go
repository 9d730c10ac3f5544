// Package local runs the whole pipeline on one machine, with no AWS account
// and no Docker: fauxqs (SQS + S3), redis-server, dynalite, the API as an
// HTTP server, the rate limiter fed by a poller that behaves like Lambda's
// SQS event source, the replay on a timer, and the real scraper binary
// against the fake OnlyFans site (or another URL). `make dev` and the
// end-to-end tests both use it.
package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	limiter "github.com/huntaze/message-pipeline/functions/ratelimiter/handler"
	"github.com/huntaze/message-pipeline/internal/auth"
	"github.com/huntaze/message-pipeline/internal/enqueue"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/flag"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/sqsevent"
	"github.com/huntaze/message-pipeline/test/fakesite"
	"github.com/huntaze/message-pipeline/test/harness"
)

// Local credentials and names.
const (
	JWTSecret   = "local-dev-secret-not-for-production!"
	JWTIssuer   = "https://local.huntaze.test/"
	JWTAudience = "huntaze-api"
	Environment = "dev"
	Bucket      = "huntaze-results-dev"
)

// Options of a local pipeline.
type Options struct {
	Creators []string
	// Limit per Window, for the limiter and the scraper's send gate.
	Limit  int
	Window time.Duration
	// ReturnSlack is added to a denied record's wait (the limiter Lambda's
	// RATE_RETURN_SLACK).
	ReturnSlack time.Duration
	// GateMargin widens the scraper's send gate window (RATE_MARGIN).
	GateMargin time.Duration
	// OutageBackoffMax caps how long a message waits out an outage (15
	// minutes in AWS; scaled down with the window in tests).
	OutageBackoffMax time.Duration
	// LimiterPollers is the event source's concurrency.
	LimiterPollers int
	// ReplayEvery runs the fallback replay (the scheduled Lambda).
	ReplayEvery time.Duration
	// SiteURL sends to another site than the fake one.
	SiteURL string
	// Logs receives every component's JSON log lines (nil: discarded).
	Logs io.Writer
	// ScraperEnv adds settings to the scraper process.
	ScraperEnv []string
}

// Pipeline is a running local pipeline.
type Pipeline struct {
	t        harness.T
	opts     Options
	Redis    *harness.Redis
	AWS      *harness.Fauxqs
	DDB      *harness.Dynalite
	Site     *fakesite.Site
	Queues   queues.System
	APIURL   string
	SQSFault *harness.FaultProxy // between the API and fauxqs
	Fallback *fallback.Store
	APIDeps  api.Deps

	scraperBin string
	scraperEnv []string
	scraper    *harness.Process
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

// Token returns a signed API token for user (scope "admin" when admin),
// granted to send as the given creators (the "creators" claim the Next.js
// app puts in the tokens it mints).
func Token(user string, admin bool, creators ...string) string {
	claims := jwt.MapClaims{"sub": user, "iss": JWTIssuer, "aud": JWTAudience, "exp": time.Now().Add(24 * time.Hour).Unix(), "creators": creators}
	if admin {
		claims["scope"] = "admin"
	}
	s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(JWTSecret))
	return s
}

// Start starts everything; it is stopped by t's cleanup.
func Start(t harness.T, o Options) *Pipeline {
	t.Helper()
	if o.LimiterPollers <= 0 {
		o.LimiterPollers = 4
	}
	if o.OutageBackoffMax <= 0 {
		o.OutageBackoffMax = 15 * time.Minute
	}
	if o.ReplayEvery <= 0 {
		o.ReplayEvery = 5 * time.Second
	}
	logs := o.Logs
	if logs == nil {
		logs = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	p := &Pipeline{t: t, opts: o, Redis: harness.StartRedis(t), AWS: harness.StartFauxqs(t), DDB: harness.StartDynalite(t)}
	ctx := context.Background()
	p.Queues = p.AWS.CreateQueues(t, Environment)
	// Locally a record whose visibility change is lost (or whose consumer
	// died) comes back after 30 s instead of the stack's 180 s / 600 s.
	for _, url := range []string{p.Queues.RateLimiter.URL, p.Queues.Workflows.URL} {
		if _, err := p.AWS.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"VisibilityTimeout": "30"}}); err != nil {
			t.Fatalf("local: %v", err)
		}
	}
	for _, tbl := range []struct{ name, key string }{{"huntaze-message-fallback-dev", fallback.KeyAttribute}, {"huntaze-idempotency-dev", idempotency.KeyAttribute}} {
		if err := fallback.CreateTable(ctx, p.DDB.DynamoDB, tbl.name, tbl.key); err != nil {
			t.Fatalf("local: %v", err)
		}
	}
	if _, err := p.AWS.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(Bucket)}); err != nil {
		t.Fatalf("local: bucket: %v", err)
	}
	siteURL := o.SiteURL
	creds := map[string]map[string]string{}
	if siteURL == "" {
		p.Site = fakesite.Start(t)
		siteURL = p.Site.URL
		for _, c := range o.Creators {
			creds[c] = map[string]string{"sessionCookie": p.Site.AddCreator(c)}
		}
	}

	runCtx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	t.Cleanup(p.shutdown)

	// API, with its SQS client behind a fault proxy (to cut SQS off).
	p.SQSFault = harness.StartFaultProxy(t, p.AWS.Endpoint, "AmazonSQS.SendMessage")
	sendCfg := p.AWS.Config.Copy()
	sendCfg.RetryMaxAttempts = 0
	sendCfg.Retryer = enqueue.Retryer(50 * time.Millisecond)
	sendClient := sqs.NewFromConfig(sendCfg, func(so *sqs.Options) { so.BaseEndpoint = aws.String(p.SQSFault.URL) })
	p.Fallback = fallback.NewStore(p.DDB.DynamoDB, "huntaze-message-fallback-dev", time.Now, 30*time.Second)
	rdb := redis.NewClient(&redis.Options{Addr: p.Redis.Addr, PoolSize: 32, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	emf := metrics.New(logs, map[string]string{"Environment": Environment}, time.Now)
	p.APIDeps = api.Deps{
		Auth:        auth.NewHMACVerifier([]byte(JWTSecret), JWTIssuer, JWTAudience, time.Now),
		Sender:      enqueue.NewSender(sendClient, enqueue.Queues{RateLimiterURL: p.Queues.RateLimiter.URL, WorkflowsURL: p.Queues.Workflows.URL}, 20*time.Millisecond),
		Fallback:    p.Fallback,
		Idempotency: idempotency.NewStore(p.DDB.DynamoDB, "huntaze-idempotency-dev", 24*time.Hour, time.Now),
		Flag:        flag.New(nil, true, 30*time.Second, time.Now, log),
		QueueStats:  p.AWS.SQS,
		Redis:       func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		Log:         log.With("service", "api"),
		Metrics:     emf.With(map[string]string{"Service": "api"}),
		Now:         time.Now,
	}
	srv, err := api.New(api.Config{
		Queues:         api.QueueURLs{RateLimiter: p.Queues.RateLimiter.URL, RateLimiterDLQ: p.Queues.RateLimiter.DLQURL, Workflows: p.Queues.Workflows.URL, WorkflowsDLQ: p.Queues.Workflows.DLQURL},
		IdempotencyTTL: 24 * time.Hour, IdempotencyStale: time.Minute,
	}, p.APIDeps)
	if err != nil {
		t.Fatalf("local: api: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("local: listen: %v", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	p.APIURL = "http://" + ln.Addr().String()

	// Rate limiter behind a Lambda-like event source.
	lim, err := ratelimit.New(rdb, p.limiterConfig("rl:"+Environment))
	if err != nil {
		t.Fatalf("local: limiter: %v", err)
	}
	h, err := limiter.New(limiter.Config{
		SourceQueueURL: p.Queues.RateLimiter.URL, WorkflowsQueueURL: p.Queues.Workflows.URL, DeadLetterQueueURL: p.Queues.RateLimiter.DLQURL,
		Version: "local", ReturnSlack: o.ReturnSlack, OutageBackoff: time.Second, OutageBackoffMax: o.OutageBackoffMax,
	}, lim, p.AWS.SQS, log.With("service", "rate-limiter"), emf.With(map[string]string{"Service": "rate-limiter"}), time.Now)
	if err != nil {
		t.Fatalf("local: limiter handler: %v", err)
	}
	poller := &sqsevent.Poller{Client: p.AWS.SQS, QueueURL: p.Queues.RateLimiter.URL, QueueARN: p.Queues.RateLimiter.ARN, BatchSize: 10, Wait: time.Second, Handler: h.Handle}
	for range o.LimiterPollers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for runCtx.Err() == nil {
				if _, err := poller.PollOnce(runCtx); err != nil && runCtx.Err() == nil {
					log.Warn("limiter poll", "error", err)
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}
	// The scheduled replay.
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(o.ReplayEvery)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				_, _ = api.Replay(runCtx, p.APIDeps, 100)
			}
		}
	}()

	// The scraper: the real binary.
	p.scraperBin = buildScraper(t)
	credsFile := filepath.Join(os.TempDir(), fmt.Sprintf("huntaze-local-creds-%d.json", os.Getpid()))
	b, _ := json.Marshal(creds)
	if err := os.WriteFile(credsFile, b, 0o600); err != nil {
		t.Fatalf("local: %v", err)
	}
	t.Cleanup(func() { _ = os.Remove(credsFile) })
	p.scraperEnv = append([]string{
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + p.AWS.Endpoint,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"ENVIRONMENT=" + Environment, "WORKFLOWS_QUEUE_URL=" + p.Queues.Workflows.URL, "WORKFLOWS_DLQ_URL=" + p.Queues.Workflows.DLQURL,
		"RESULTS_BUCKET=" + Bucket, "REDIS_ADDR=" + p.Redis.Addr, "REDIS_TLS=false", "CREDENTIALS_FILE=" + credsFile,
		"ONLYFANS_BASE_URL=" + siteURL, "PLAYWRIGHT_DRIVER_PATH=" + harness.DriverDir(t),
		"POLL_WAIT=1s", "SERVER_BACKOFF=100ms", "BACKOFF_BASE=1s", "RATE_LIMIT_DEFAULT=1s", "BREAKER_OPEN_FOR=2s",
		"RESPONSE_TIMEOUT=5s", "NAVIGATION_TIMEOUT=10s", "SHUTDOWN_DEADLINE=20s", "MAX_GROUPS=8",
		fmt.Sprintf("RATE_LIMIT=%d", o.Limit), "RATE_WINDOW=" + o.Window.String(), "RATE_MARGIN=" + o.GateMargin.String(), "OUTAGE_BACKOFF=1s", "OUTAGE_BACKOFF_MAX=" + o.OutageBackoffMax.String(),
	}, o.ScraperEnv...)
	p.StartScraper()
	return p
}

func (p *Pipeline) limiterConfig(prefix string) ratelimit.Config {
	return ratelimit.Config{Limit: p.opts.Limit, Window: p.opts.Window, KeyPrefix: prefix}
}

// StartScraper starts (or restarts) the scraper process.
func (p *Pipeline) StartScraper() {
	p.scraper = harness.StartCommand(p.t, "scraper", p.scraperEnv, p.scraperBin)
}

// StopScraper sends sig to the scraper (SIGTERM: to the program only, as
// ECS does; SIGKILL: to the whole process tree, as a lost task) and waits.
func (p *Pipeline) StopScraper(sig syscall.Signal) int {
	if sig == syscall.SIGKILL {
		_ = p.scraper.Signal(sig)
	} else {
		_ = p.scraper.SignalMain(sig)
	}
	return p.scraper.Wait(p.t, 60*time.Second)
}

// ScraperOutput is the current scraper process's output.
func (p *Pipeline) ScraperOutput() string { return p.scraper.Output() }

func (p *Pipeline) shutdown() {
	if p.scraper != nil && !p.scraper.Exited() {
		_ = p.scraper.SignalMain(syscall.SIGTERM)
		select {
		case <-waitExit(p.scraper):
		case <-time.After(25 * time.Second):
		}
	}
	p.stop()
	p.wg.Wait()
}

func waitExit(pr *harness.Process) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for !pr.Exited() {
			time.Sleep(50 * time.Millisecond)
		}
		close(ch)
	}()
	return ch
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// buildScraper compiles the scraper once per process.
func buildScraper(t harness.T) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "huntaze-scraper-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "scraper")
		cmd := exec.Command("go", "build", "-o", builtPath, "./scraper/cmd/scraper")
		cmd.Dir = harness.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build scraper: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("local: %v", buildErr)
	}
	return builtPath
}

// QueueDepth returns visible + in flight + delayed messages of a queue.
func (p *Pipeline) QueueDepth(url string) int { return harness.QueueDepth(p.AWS.SQS, url) }

// Summary is the live state `make dev` prints.
func (p *Pipeline) Summary() string {
	var b strings.Builder
	pending, _ := p.Fallback.PendingCount(context.Background())
	fmt.Fprintf(&b, "queues: rate-limiter %d, workflows %d | DLQs: rate-limiter %d, workflows %d | fallback pending %d\n",
		p.QueueDepth(p.Queues.RateLimiter.URL), p.QueueDepth(p.Queues.Workflows.URL),
		p.QueueDepth(p.Queues.RateLimiter.DLQURL), p.QueueDepth(p.Queues.Workflows.DLQURL), pending)
	if p.Site != nil {
		sent := map[string]int{}
		for _, m := range p.Site.Sent() {
			sent[m.Creator]++
		}
		peak := p.Site.MaxInWindow(p.opts.Window)
		for _, c := range p.opts.Creators {
			fmt.Fprintf(&b, "  %-12s sent %4d   most in one %s window: %d (limit %d)\n", c, sent[c], p.opts.Window, peak[c], p.opts.Limit)
		}
	}
	return b.String()
}
