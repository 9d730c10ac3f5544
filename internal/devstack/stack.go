package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"

	apihandler "github.com/huntaze/message-pipeline/functions/api/handler"
	apisetup "github.com/huntaze/message-pipeline/functions/api/setup"
	limitersetup "github.com/huntaze/message-pipeline/functions/ratelimiter/setup"
	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/featureflag"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/redisconn"
	"github.com/huntaze/message-pipeline/scraper"
	scrapersetup "github.com/huntaze/message-pipeline/scraper/setup"
)

// Local credentials and names.
const (
	JWTSecret        = "local-dev-secret-not-for-production!"
	JWTIssuer        = "https://local.huntaze.test/"
	JWTAudience      = "huntaze-api"
	Environment      = "dev"
	Bucket           = "huntaze-results-dev"
	FallbackTable    = "huntaze-message-fallback-dev"
	IdempotencyTable = "huntaze-idempotency-dev"
	// AttemptsTable keeps the scraper's marks of unresolved clicks.
	AttemptsTable = "huntaze-scraper-attempts-dev"
)

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

// Options of a local stack. Durations are the production settings' (the
// 60 s window, the 15 min outage cap), scaled down by tests.
type Options struct {
	// SiteURL is where the scraper sends; Sessions maps each creator to its
	// session cookie there.
	SiteURL  string
	Sessions map[string]string
	// Limit per Window, for the limiter and the scraper's send gate.
	Limit  int
	Window time.Duration
	// ReturnSlack, GateMargin, OutageBackoffMax: RATE_RETURN_SLACK,
	// RATE_MARGIN, OUTAGE_BACKOFF_MAX.
	ReturnSlack      time.Duration
	GateMargin       time.Duration
	OutageBackoffMax time.Duration
	// LimiterPollers is the event source's concurrency.
	LimiterPollers int
	// ReplayEvery runs the fallback replay (the scheduled Lambda).
	ReplayEvery time.Duration
	// Logs receives every component's JSON log and EMF lines (nil: dropped).
	Logs io.Writer
	// ScraperEnv overrides scraper settings (KEY=VALUE names of its Settings).
	ScraperEnv map[string]string
	// APISQSEndpoint, when set, returns the SQS endpoint the API uses given
	// the emulator's (tests put a fault proxy there).
	APISQSEndpoint func(emulator string) (string, error)
	// Recorder, when set, records every AWS call each component makes
	// (the IAM coverage test).
	Recorder *CallRecorder
}

// Stack is a running local pipeline.
type Stack struct {
	Redis    *Redis
	AWS      *Fauxqs
	DDB      *Dynalite
	Queues   System
	APIURL   string
	Fallback *fallback.Store
	APIDeps  apihandler.Deps
	// Flag stands for the RATE_LIMITER_ENABLED SSM parameter: the API and
	// the limiter read it (cached FlagTTL); SetRateLimiterEnabled flips it.
	Flag featureflag.Switch

	limiterStop context.CancelFunc
	limiterWG   sync.WaitGroup
	limiterMu   sync.Mutex

	opts       Options
	limiterRun context.Context
	root       string
	logs       io.Writer
	scraperBin string
	scraperEnv []string
	scraper    *Process
	closers    []func() error
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

// Start starts everything. On error, what was started is stopped again.
func Start(o Options) (_ *Stack, err error) {
	if o.LimiterPollers <= 0 {
		o.LimiterPollers = 4
	}
	if o.OutageBackoffMax <= 0 {
		o.OutageBackoffMax = 15 * time.Minute
	}
	if o.ReplayEvery <= 0 {
		o.ReplayEvery = 5 * time.Second
	}
	s := &Stack{opts: o, logs: o.Logs}
	if s.logs == nil {
		s.logs = io.Discard
	}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.root, err = RepoRoot(); err != nil {
		return nil, err
	}
	if err := s.startEmulators(); err != nil {
		return nil, err
	}
	if err := s.primeFences(); err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	if err := s.startAPI(runCtx); err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s.limiterRun = runCtx
	if err := s.startLimiter(runCtx); err != nil {
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	if err := s.startScraper(); err != nil {
		return nil, fmt.Errorf("scraper: %w", err)
	}
	return s, nil
}

func (s *Stack) startEmulators() (err error) {
	if s.Redis, err = StartRedis(); err != nil {
		return err
	}
	s.closers = append(s.closers, s.Redis.Close)
	if s.AWS, err = StartFauxqs(s.root); err != nil {
		return err
	}
	s.closers = append(s.closers, s.AWS.Close)
	if s.DDB, err = StartDynalite(s.root); err != nil {
		return err
	}
	s.closers = append(s.closers, s.DDB.Close)
	ctx := context.Background()
	if s.Queues, err = s.AWS.CreateQueues(ctx, Environment); err != nil {
		return err
	}
	// Locally a record whose visibility change is lost (or whose consumer
	// died) comes back after 30 s instead of the stack's 180 s / 600 s.
	for _, url := range []string{s.Queues.RateLimiter.URL, s.Queues.Workflows.URL} {
		if _, err := s.AWS.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"VisibilityTimeout": "30"}}); err != nil {
			return err
		}
	}
	if err := CreateFallbackTable(ctx, s.DDB.DynamoDB, FallbackTable); err != nil {
		return err
	}
	if err := CreateTable(ctx, s.DDB.DynamoDB, IdempotencyTable, idempotency.KeyAttribute); err != nil {
		return err
	}
	if err := CreateTable(ctx, s.DDB.DynamoDB, AttemptsTable, scraper.AttemptsKeyAttribute); err != nil {
		return err
	}
	_, err = s.AWS.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(Bucket)})
	return err
}

// primeFences marks the new Redis as one that has served the limiter and
// the send gate all along: it lost nothing, so neither holds back its first
// window as after a failover (tests that empty Redis restart it unprimed).
func (s *Stack) primeFences() error {
	rdb := redis.NewClient(&redis.Options{Addr: s.Redis.Addr})
	defer rdb.Close()
	for _, key := range []string{s.LimiterSettings().Limiter().FenceKey(), s.ScraperSettings("").Gate().FenceKey()} {
		if err := rdb.Set(context.Background(), key, 0, 0).Err(); err != nil {
			return fmt.Errorf("prime fence %s: %w", key, err)
		}
	}
	// The scraper's ledger too: no message was accepted before it.
	if err := s.ScraperSettings("").Ledger(rdb).PrimeEpoch(context.Background()); err != nil {
		return fmt.Errorf("prime the scraper ledger's epoch: %w", err)
	}
	return nil
}

// awsFor is the AWS configuration a component gets: the emulators'
// endpoints, and the recorder when one is set.
func (s *Stack) awsFor(component string, sqsEndpoint string) aws.Config {
	cfg := LocalAWS(Endpoints{"SQS": sqsEndpoint, "S3": s.AWS.Endpoint, "DynamoDB": s.DDB.Endpoint})
	if s.opts.Recorder != nil {
		cfg.APIOptions = append(cfg.APIOptions, s.opts.Recorder.Middleware(component))
	}
	return cfg
}

// APISettings are the API's settings in this stack (also the replay's).
func (s *Stack) APISettings() apisetup.Settings {
	return apisetup.Settings{
		Environment:         Environment,
		RateLimiterQueueURL: s.Queues.RateLimiter.URL, RateLimiterDLQURL: s.Queues.RateLimiter.DLQURL,
		WorkflowsQueueURL: s.Queues.Workflows.URL, WorkflowsDLQURL: s.Queues.Workflows.DLQURL,
		FallbackTable: FallbackTable, IdempotencyTable: IdempotencyTable,
		RateLimiterEnabled: "true", FlagCacheTTL: FlagTTL,
		Redis:    redisconn.Settings{Addr: s.Redis.Addr, Timeout: time.Second},
		AuthMode: "jwt", JWTHMACSecret: JWTSecret, JWTIssuer: JWTIssuer, JWTAudience: JWTAudience,
		AdminScope: "admin", OpsScope: "ops", ServiceScope: "messages:send-any-creator", CreatorsClaim: "creators",
		SendMaxBackoff: 50 * time.Millisecond, ReplayBatch: 100,
		CallerRequests: 50, CallerWindow: time.Second, CreatorWaiting: 10000, CreatorDrain: s.opts.Window / time.Duration(max(s.opts.Limit, 1)),
	}
}

func (s *Stack) startAPI(runCtx context.Context) error {
	// Through the environment, as in Lambda: what Load rejects, main would.
	settings, err := apisetup.Load(s.APISettings().Env())
	if err != nil {
		return err
	}
	sqsEndpoint := s.AWS.Endpoint
	if s.opts.APISQSEndpoint != nil {
		if sqsEndpoint, err = s.opts.APISQSEndpoint(sqsEndpoint); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewJSONHandler(s.logs, nil)).With("service", "api")
	cfg, deps, err := apisetup.Build(context.Background(), settings, s.awsFor("api", sqsEndpoint), log, s.logs)
	if err != nil {
		return err
	}
	if cfg.Unavailable != "" {
		return errors.New(cfg.Unavailable)
	}
	deps.Flag = featureflag.New(&s.Flag, true, FlagTTL, time.Now, log) // the SSM parameter's stand-in
	s.APIDeps = deps
	s.Fallback = deps.Fallback
	srv, err := apihandler.New(cfg, deps)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	s.closers = append(s.closers, hs.Close)
	s.APIURL = "http://" + ln.Addr().String()

	// The scheduled replay: the replay Lambda's main runs the same.
	_, replayDeps, err := apisetup.Build(context.Background(), settings, s.awsFor("replay", s.AWS.Endpoint), log.With("service", "replay"), s.logs)
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(s.opts.ReplayEvery)
		defer tick.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
				_, _ = apihandler.Replay(runCtx, replayDeps, settings.ReplayBatch)
			}
		}
	}()
	return nil
}

// LimiterSettings are the rate limiter's settings in this stack.
func (s *Stack) LimiterSettings() limitersetup.Settings {
	return limitersetup.Settings{
		Environment: Environment, SourceQueueURL: s.Queues.RateLimiter.URL, DeadLetterQueueURL: s.Queues.RateLimiter.DLQURL,
		WorkflowsQueueURL: s.Queues.Workflows.URL, Redis: redisconn.Settings{Addr: s.Redis.Addr, Timeout: time.Second},
		Limit: s.opts.Limit, Window: s.opts.Window, ReturnSlack: s.opts.ReturnSlack, KeyPrefix: "rl", Version: "local",
		OutageBackoff: time.Second, OutageBackoffMax: s.opts.OutageBackoffMax,
		RateLimiterEnabled: "true", FlagCacheTTL: FlagTTL,
	}
}

// FlagTTL is how long the local components cache the flag (30 s in AWS).
const FlagTTL = 200 * time.Millisecond

// SetRateLimiterEnabled flips the flag, as an operator writes the SSM
// parameter; the components see it within FlagTTL.
func (s *Stack) SetRateLimiterEnabled(on bool) {
	s.Flag.Set(fmt.Sprint(on))
}

// RestartLimiter stops every limiter poller (an invocation in flight
// finishes first, as Lambda's) and starts new ones with a new handler, as
// after a deployment or a cold start.
func (s *Stack) RestartLimiter() error {
	s.limiterMu.Lock()
	stop := s.limiterStop
	s.limiterMu.Unlock()
	if stop != nil {
		stop()
	}
	s.limiterWG.Wait()
	return s.startLimiter(s.limiterRun)
}

func (s *Stack) startLimiter(runCtx context.Context) error {
	settings, err := limitersetup.Load(s.LimiterSettings().Env())
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(s.logs, nil)).With("service", "rate-limiter")
	awsCfg := s.awsFor("ratelimiter", s.AWS.Endpoint)
	h, err := limitersetup.BuildWithFlag(context.Background(), settings, awsCfg, log, s.logs, &s.Flag)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(runCtx)
	s.limiterMu.Lock()
	s.limiterStop = stop
	s.limiterMu.Unlock()
	// Lambda's event source mapping receives and deletes with the
	// function's role, so its calls are recorded as the limiter's.
	poller := &Poller{Client: sqs.NewFromConfig(awsCfg), QueueURL: s.Queues.RateLimiter.URL, QueueARN: s.Queues.RateLimiter.ARN, BatchSize: 10, Wait: time.Second, Handler: h.Handle}
	for range s.opts.LimiterPollers {
		s.limiterWG.Add(1)
		go func() {
			defer s.limiterWG.Done()
			for runCtx.Err() == nil {
				if _, err := poller.PollOnce(runCtx); err != nil && runCtx.Err() == nil {
					log.Warn("limiter poll", "error", err)
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}
	return nil
}

// ScraperSettings are the scraper's settings in this stack (credentials
// from credsFile).
func (s *Stack) ScraperSettings(credsFile string) scrapersetup.Settings {
	return scrapersetup.Settings{
		Environment: Environment, QueueURL: s.Queues.Workflows.URL, DeadLetterURL: s.Queues.Workflows.DLQURL,
		ResultsBucket: Bucket, AttemptsTable: AttemptsTable, BaseURL: s.opts.SiteURL, CredentialsFile: credsFile,
		DriverDir: filepath.Join(s.root, ".cache", "playwright-driver"), ChromiumPath: "/usr/lib/chromium/chromium",
		Redis:    redisconn.Settings{Addr: s.Redis.Addr, Timeout: time.Second},
		PollWait: time.Second, MaxGroups: 8, MaxFailures: 5, BackoffBase: time.Second, BackoffFactor: 2,
		ServerAttempts: 3, ServerBackoff: 100 * time.Millisecond, RateLimitDefault: time.Second,
		BreakerFailures: 5, BreakerOpenFor: 2 * time.Second, ShutdownDeadline: 20 * time.Second, RecycleAfter: 50,
		NavTimeout: 10 * time.Second, ActionTimeout: 10 * time.Second, ResponseTimeout: 5 * time.Second, LedgerTTL: 336 * time.Hour,
		OutageBackoff: time.Second, OutageBackoffMax: s.opts.OutageBackoffMax, ReadBackSettle: 3 * time.Second,
		RateLimit: s.opts.Limit, RateWindow: s.opts.Window, RateMargin: s.opts.GateMargin,
	}
}

func (s *Stack) startScraper() error {
	bin, err := buildScraper(s.root)
	if err != nil {
		return err
	}
	s.scraperBin = bin
	creds := map[string]map[string]string{}
	for c, cookie := range s.opts.Sessions {
		creds[c] = map[string]string{"sessionCookie": cookie}
	}
	credsFile := filepath.Join(os.TempDir(), fmt.Sprintf("huntaze-local-creds-%d-%p.json", os.Getpid(), s))
	b, _ := json.Marshal(creds)
	if err := os.WriteFile(credsFile, b, 0o600); err != nil {
		return err
	}
	s.closers = append(s.closers, func() error { return os.Remove(credsFile) })
	environ := envconfig.Merge(s.ScraperSettings(credsFile).Env(), s.opts.ScraperEnv)
	if _, err := scrapersetup.Load(environ); err != nil {
		return err
	}
	endpoint, ddbEndpoint := s.AWS.Endpoint, s.DDB.Endpoint
	if s.opts.Recorder != nil {
		// A separate process: its calls are recorded by a proxy in front of
		// each emulator instead of an SDK middleware.
		if endpoint, err = s.opts.Recorder.Proxy("scraper", endpoint); err != nil {
			return err
		}
		if ddbEndpoint, err = s.opts.Recorder.Proxy("scraper", ddbEndpoint); err != nil {
			return err
		}
		s.closers = append(s.closers, s.opts.Recorder.Close)
	}
	s.scraperEnv = append(envconfig.List(environ),
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION="+Region, "AWS_ENDPOINT_URL="+endpoint, "AWS_ENDPOINT_URL_DYNAMODB="+ddbEndpoint,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	return s.StartScraper()
}

// StartScraper starts (or restarts) the scraper process.
func (s *Stack) StartScraper() error {
	p, err := StartProcess("scraper", s.logs, s.scraperEnv, s.scraperBin)
	if err != nil {
		return err
	}
	s.scraper = p
	return nil
}

// StopScraper sends sig to the scraper (SIGTERM: to the program only, as
// ECS does; SIGKILL: to the whole process tree, as a lost task) and waits
// for its exit code.
func (s *Stack) StopScraper(sig syscall.Signal) (int, error) {
	if sig == syscall.SIGKILL {
		_ = s.scraper.Signal(sig)
	} else {
		_ = s.scraper.SignalMain(sig)
	}
	return s.scraper.Wait(60 * time.Second)
}

// ScraperOutput is the current scraper process's output.
func (s *Stack) ScraperOutput() string {
	if s.scraper == nil {
		return ""
	}
	return s.scraper.Output()
}

// Close stops the scraper (SIGTERM, as ECS), the in-process components and
// the emulators, last started first.
func (s *Stack) Close() error {
	if s.scraper != nil && !s.scraper.Exited() {
		_ = s.scraper.SignalMain(syscall.SIGTERM)
		select {
		case <-s.scraper.Done():
		case <-time.After(25 * time.Second):
		}
		_ = s.scraper.Close()
	}
	if s.stop != nil {
		s.stop()
	}
	s.wg.Wait()
	s.limiterWG.Wait()
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// QueueDepth returns visible + in flight + delayed messages of a queue.
func (s *Stack) QueueDepth(url string) int { return QueueDepth(s.AWS.SQS, url) }

// Summary is the queues' and the fallback table's state, one line.
func (s *Stack) Summary() string {
	pending, _ := s.Fallback.PendingCount(context.Background())
	return fmt.Sprintf("queues: rate-limiter %d, workflows %d | DLQs: rate-limiter %d, workflows %d | fallback pending %d\n",
		s.QueueDepth(s.Queues.RateLimiter.URL), s.QueueDepth(s.Queues.Workflows.URL),
		s.QueueDepth(s.Queues.RateLimiter.DLQURL), s.QueueDepth(s.Queues.Workflows.DLQURL), pending)
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// buildScraper compiles the scraper once per process.
func buildScraper(root string) (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "huntaze-scraper-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "scraper")
		cmd := exec.Command("go", "build", "-o", builtPath, "./scraper/cmd/scraper")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build scraper: %v\n%s", err, out)
		}
	})
	return builtPath, buildErr
}
