// Package devstack runs the pipeline on one machine, with no AWS account and
// no Docker (make dev, the end-to-end tests): redis-server, fauxqs (SQS +
// S3), dynalite (DynamoDB), a parameter store and the issuer's key set on
// free 127.0.0.1 ports (devstack/emulator); each Lambda's own main under
// the Lambda Runtime Interface Emulator with the environment the stack
// renders, fed by the event source the stack gives it (devstack/lambdalocal):
// the API behind a front doing what the HTTP API and its JWT authorizer do,
// the rate limiter by the SQS event source mapping, the replay by its
// schedule; and the real scraper binary. Every setting comes from infra's
// wiring for the dev environment (Wire): only endpoints and scaled windows
// differ.
//
// Every start returns an error instead of exiting, and everything started
// has Close. A missing binary is an error that names the install command.
package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/devstack/lambdalocal"
	"github.com/huntaze/message-pipeline/infra"
	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/scraper/ledgerrun"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// Options of a local stack. Everything else is the dev stack's.
type Options struct {
	// SiteURL is where the scraper sends; Sessions maps each creator to its
	// session cookie there.
	SiteURL  string
	Sessions map[string]string
	// Window, when set, scales the stack's per-creator window down (tests);
	// the limit's count and every default stay the stack's, and the
	// durations tied to the window scale with it (Scale).
	Window time.Duration
	// OutageBackoffMax, when set, replaces the scaled cap of outage waits
	// (OUTAGE_BACKOFF_MAX, 15 min in the stack).
	OutageBackoffMax time.Duration
	// LimiterPollers is the event source's concurrency (0: the stack's
	// maximum concurrency); each poller has its own limiter instance.
	LimiterPollers int
	// APIInstances is how many API instances serve at once (0: 4).
	APIInstances int
	// ReplayEvery, when set, replaces the scaled replay schedule.
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
	Recorder *emulator.CallRecorder
}

// Stack is a running local pipeline.
type Stack struct {
	Redis  *emulator.Redis
	AWS    *emulator.Fauxqs
	DDB    *emulator.Dynalite
	Queues emulator.System
	// APIURL is the HTTP API's front.
	APIURL string
	// Fallback reads the fallback table (what the tests and the summary
	// look at; the Lambdas have their own).
	Fallback *fallback.Store
	// Wiring is every component's settings.
	Wiring Wiring

	opts      Options
	root      string
	logs      io.Writer
	params    *emulator.ParameterStore
	jwks      *emulator.JWKS
	api       *lambdalocal.Function
	limiter   *lambdalocal.Function
	replay    *lambdalocal.Function
	front     *lambdalocal.Front
	endpoints map[string]map[string]string // component -> SDK service id -> URL

	limiterMu   sync.Mutex
	limiterStop context.CancelFunc
	limiterWG   sync.WaitGroup
	runCtx      context.Context

	scraperBin string
	scraperEnv []string
	scraper    *emulator.Process
	closers    []func() error
	stop       context.CancelFunc
	wg         sync.WaitGroup
}

// Start starts everything. On error, what was started is stopped again.
func Start(o Options) (_ *Stack, err error) {
	s := &Stack{opts: o, logs: o.Logs, endpoints: map[string]map[string]string{}}
	if s.logs == nil {
		s.logs = io.Discard
	}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.root, err = emulator.RepoRoot(); err != nil {
		return nil, err
	}
	env, err := stackEnvironment()
	if err != nil {
		return nil, err
	}
	bins, err := build(s.root)
	if err != nil {
		return nil, err
	}
	if err := s.startEmulators(); err != nil {
		return nil, err
	}
	s.Wiring = Wire(env, localResources(s.Queues.RateLimiter.URL, s.Queues.RateLimiter.DLQURL, s.Queues.Workflows.URL, s.Queues.Workflows.DLQURL, s.Redis.Addr), o.Window, o.OutageBackoffMax)
	if err := s.primeFences(); err != nil {
		return nil, err
	}
	s.params.Set(s.Wiring.API.FlagParameter, "true")
	runCtx, cancel := context.WithCancel(context.Background())
	s.stop, s.runCtx = cancel, runCtx
	if err := s.startFunctions(bins); err != nil {
		return nil, err
	}
	s.scraperBin = bins.scraper
	if err := s.startScraper(); err != nil {
		return nil, fmt.Errorf("scraper: %w", err)
	}
	return s, nil
}

func (s *Stack) startEmulators() (err error) {
	if s.Redis, err = emulator.StartRedis(); err != nil {
		return err
	}
	s.closers = append(s.closers, s.Redis.Close)
	if s.AWS, err = emulator.StartFauxqs(s.root); err != nil {
		return err
	}
	s.closers = append(s.closers, s.AWS.Close)
	if s.DDB, err = emulator.StartDynalite(s.root); err != nil {
		return err
	}
	s.closers = append(s.closers, s.DDB.Close)
	if s.params, err = emulator.StartParameterStore(); err != nil {
		return err
	}
	s.closers = append(s.closers, s.params.Close)
	key, err := signingKey()
	if err != nil {
		return err
	}
	if s.jwks, err = emulator.StartJWKS(&key.PublicKey, keyID); err != nil {
		return err
	}
	s.closers = append(s.closers, s.jwks.Close)
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
	if err := emulator.CreateFallbackTable(ctx, s.DDB.DynamoDB, FallbackTable); err != nil {
		return err
	}
	if err := emulator.CreateTable(ctx, s.DDB.DynamoDB, IdempotencyTable, idempotency.KeyAttribute); err != nil {
		return err
	}
	if err := emulator.CreateTable(ctx, s.DDB.DynamoDB, AttemptsTable, scrapersettings.AttemptsKeyAttribute); err != nil {
		return err
	}
	s.Fallback = fallback.NewStore(s.DDB.DynamoDB, FallbackTable, time.Now, time.Minute)
	_, err = s.AWS.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(Bucket)})
	return err
}

// primeFences marks the new Redis as one that has served the limiter and
// the send gate all along: it lost nothing, so neither holds back its first
// window as after a failover (tests that empty Redis restart it unprimed).
func (s *Stack) primeFences() error {
	rdb := redis.NewClient(&redis.Options{Addr: s.Redis.Addr})
	defer rdb.Close()
	for _, key := range []string{s.Wiring.Limiter.Limiter().FenceKey(), s.Wiring.Scraper.Gate().FenceKey()} {
		if err := rdb.Set(context.Background(), key, 0, 0).Err(); err != nil {
			return fmt.Errorf("prime %s: %w", key, err)
		}
	}
	// The scraper's ledger too (its epoch and run): no message was
	// accepted before it.
	if err := ledgerrun.Prime(context.Background(), rdb, s.Wiring.Scraper.LedgerPrefix()); err != nil {
		return fmt.Errorf("prime the scraper's ledger: %w", err)
	}
	return nil
}

// endpoint is the URL a component reaches an emulator at: through the
// recorder's proxy when calls are recorded.
func (s *Stack) endpoint(component, service, target string) (string, error) {
	if s.opts.Recorder == nil {
		return target, nil
	}
	if u, ok := s.endpoints[component][service]; ok {
		return u, nil
	}
	u, err := s.opts.Recorder.Proxy(component, target)
	if err != nil {
		return "", err
	}
	if s.endpoints[component] == nil {
		s.endpoints[component] = map[string]string{}
	}
	s.endpoints[component][service] = u
	return u, nil
}

// processEnv is what a component in its own process gets besides its
// settings: the emulators' endpoints and test credentials, and no
// developer's profile or instance metadata.
func (s *Stack) processEnv(component, sqsTarget string) (map[string]string, error) {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": emulator.Region, "AWS_DEFAULT_REGION": emulator.Region,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	}
	for name, target := range map[string]string{"SQS": sqsTarget, "S3": s.AWS.Endpoint, "DYNAMODB": s.DDB.Endpoint, "SSM": s.params.URL} {
		u, err := s.endpoint(component, name, target)
		if err != nil {
			return nil, err
		}
		env["AWS_ENDPOINT_URL_"+name] = u
	}
	return env, nil
}

// LambdaEnv is the whole environment of one of the assembly's functions
// (its settings and the local endpoints), e.g. for `make replay`.
func (s *Stack) LambdaEnv(component string, fn Function) (map[string]string, error) {
	sqsTarget := s.AWS.Endpoint
	if component == "api" && s.opts.APISQSEndpoint != nil {
		var err error
		if sqsTarget, err = s.opts.APISQSEndpoint(sqsTarget); err != nil {
			return nil, err
		}
	}
	env, err := s.processEnv(component, sqsTarget)
	if err != nil {
		return nil, err
	}
	maps.Copy(env, fn.Env)
	return env, nil
}

// ReplayEnv is the replay function's whole environment here (`make
// replay` runs its main once with it).
func (s *Stack) ReplayEnv() (map[string]string, error) {
	for _, fn := range s.Wiring.Functions() {
		if fn.Event.Kind == "schedule" {
			return s.LambdaEnv("replay", fn)
		}
	}
	return nil, errors.New("no scheduled function")
}

func (s *Stack) startFunctions(bins binaries) error {
	for _, fn := range s.Wiring.Functions() {
		switch fn.Event.Kind {
		case "http-api":
			if err := s.startAPI(bins, fn); err != nil {
				return fmt.Errorf("api: %w", err)
			}
		case "sqs":
			if err := s.startLimiter(bins, fn); err != nil {
				return fmt.Errorf("rate limiter: %w", err)
			}
		case "schedule":
			if err := s.startReplay(bins, fn); err != nil {
				return fmt.Errorf("replay: %w", err)
			}
		}
	}
	return nil
}

func (s *Stack) function(bins binaries, component string, fn Function, instances int) (*lambdalocal.Function, error) {
	env, err := s.LambdaEnv(component, fn)
	if err != nil {
		return nil, err
	}
	f, err := lambdalocal.Start(bins.rie, lambdalocal.Spec{
		Name: fn.FunctionName(Environment), Bootstrap: bins.bootstrap[fn.Package], Timeout: fn.Timeout, MemoryMB: fn.MemoryMB,
		Env: env, Instances: instances, Logs: s.logs,
	})
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, f.Close)
	return f, nil
}

func (s *Stack) startAPI(bins binaries, fn Function) (err error) {
	if s.api, err = s.function(bins, "api", fn, cmp(s.opts.APIInstances, 4)); err != nil {
		return err
	}
	s.front, err = lambdalocal.StartFront(s.api, lambdalocal.FrontConfig{
		Routes: fn.Event.Routes, Log: s.log("http-api"), MaxBody: lambdalocal.HTTPAPIMaxBody,
		Authorizer: lambdalocal.JWTAuthorizer{Issuer: fn.Event.Issuer, Audiences: fn.Event.Audiences, JWKSURL: s.jwks.URL},
	})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, s.front.Close)
	s.APIURL = s.front.URL
	return nil
}

func (s *Stack) startReplay(bins binaries, fn Function) (err error) {
	if s.replay, err = s.function(bins, "replay", fn, 1); err != nil {
		return err
	}
	every := fn.Event.Every
	if s.opts.ReplayEvery > 0 {
		every = s.opts.ReplayEvery
	}
	sched := lambdalocal.Schedule{RuleARN: "arn:aws:events:" + emulator.Region + ":000000000000:rule/local-replay-schedule", Every: every, Fn: s.replay, Log: s.log("events")}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sched.Run(s.runCtx)
	}()
	return nil
}

func (s *Stack) startLimiter(bins binaries, fn Function) (err error) {
	pollers := cmp(s.opts.LimiterPollers, fn.Event.MaxConcurrency)
	if s.limiter, err = s.function(bins, "ratelimiter", fn, pollers); err != nil {
		return err
	}
	s.startPollers(fn, pollers)
	return nil
}

// startPollers runs the event source mapping: pollers receivers, each
// invoking the function with its batch.
func (s *Stack) startPollers(fn Function, pollers int) {
	log := s.log("event-source-mapping")
	// The mapping receives and deletes with the function's role, so its
	// calls are recorded as the limiter's.
	cfg := emulator.AWSConfig()
	if s.opts.Recorder != nil {
		cfg.APIOptions = append(cfg.APIOptions, s.opts.Recorder.Middleware("ratelimiter"))
	}
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(s.AWS.Endpoint) })
	poller := &lambdalocal.Poller{Client: client, QueueURL: s.Queues.RateLimiter.URL, QueueARN: s.Queues.RateLimiter.ARN,
		BatchSize: int32(fn.Event.BatchSize), BatchingWindow: fn.Event.BatchingWindow, Wait: time.Second, Handler: lambdalocal.SQSHandler(s.limiter)}
	ctx, stop := context.WithCancel(s.runCtx)
	s.limiterMu.Lock()
	s.limiterStop = stop
	s.limiterMu.Unlock()
	for range pollers {
		s.limiterWG.Add(1)
		go func() {
			defer s.limiterWG.Done()
			for ctx.Err() == nil {
				if _, err := poller.PollOnce(ctx); err != nil && ctx.Err() == nil {
					log.Warn("limiter batch failed; its records come back after their visibility", "error", err)
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}
}

func (s *Stack) log(service string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(s.logs, nil)).With("service", service)
}

func cmp(v, otherwise int) int {
	if v > 0 {
		return v
	}
	return otherwise
}

// SetRateLimiterEnabled writes the RATE_LIMITER_ENABLED parameter, as an
// operator does; the functions see it within their flag cache TTL.
func (s *Stack) SetRateLimiterEnabled(on bool) {
	s.params.Set(s.Wiring.API.FlagParameter, fmt.Sprint(on))
}

// RestartLimiter stops the event source (a batch in flight finishes
// first, as in Lambda) and restarts every limiter instance, as after a
// deployment or a cold start.
func (s *Stack) RestartLimiter() error {
	s.limiterMu.Lock()
	stop := s.limiterStop
	s.limiterMu.Unlock()
	stop()
	s.limiterWG.Wait()
	if err := s.limiter.Restart(); err != nil {
		return err
	}
	for _, fn := range s.Wiring.Functions() {
		if fn.Event.Kind == "sqs" {
			s.startPollers(fn, cmp(s.opts.LimiterPollers, fn.Event.MaxConcurrency))
		}
	}
	return nil
}

// ScraperSettings are the scraper's settings in this stack (credentials
// from credsFile): the stack's, with the site and the sessions local.
func (s *Stack) ScraperSettings(credsFile string) scrapersettings.Settings {
	st := s.Wiring.Scraper
	st.SessionSecretPrefix, st.CredentialsFile = "", credsFile
	st.BaseURL = s.opts.SiteURL
	st.DriverDir = filepath.Join(s.root, ".cache", "playwright-driver")
	return st
}

func (s *Stack) startScraper() error {
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
	if _, err := scrapersettings.Load(environ); err != nil {
		return err
	}
	endpoints, err := s.processEnv("scraper", s.AWS.Endpoint)
	if err != nil {
		return err
	}
	if s.opts.Recorder != nil {
		s.closers = append(s.closers, s.opts.Recorder.Close)
	}
	s.scraperEnv = envconfig.List(envconfig.Merge(endpoints, environ))
	return s.StartScraper()
}

// StartScraper starts (or restarts) the scraper process.
func (s *Stack) StartScraper() error {
	p, err := emulator.StartProcess("scraper", s.logs, s.scraperEnv, s.scraperBin)
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
	return s.scraper.Wait(s.scraperExitWait())
}

// scraperExitWait is how long the scraper may take to exit after SIGTERM:
// its own SHUTDOWN_DEADLINE plus the slack ECS leaves it after the default
// deadline (infra.ScraperStopTimeoutSec), so no local wait is shorter than
// the deadline the scraper is allowed.
func (s *Stack) scraperExitWait() time.Duration {
	ecsSlack := time.Duration(infra.ScraperStopTimeoutSec)*time.Second - scrapersettings.Defaults().ShutdownDeadline
	return s.Wiring.Scraper.ShutdownDeadline + ecsSlack
}

// ScraperOutput is the current scraper process's output.
func (s *Stack) ScraperOutput() string {
	if s.scraper == nil {
		return ""
	}
	return s.scraper.Output()
}

// Close stops the scraper (SIGTERM, as ECS), the event sources, the
// functions and the emulators, last started first.
func (s *Stack) Close() error {
	if s.scraper != nil && !s.scraper.Exited() {
		_ = s.scraper.SignalMain(syscall.SIGTERM)
		select {
		case <-s.scraper.Done():
		case <-time.After(s.scraperExitWait()):
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
func (s *Stack) QueueDepth(url string) int { return emulator.QueueDepth(s.AWS.SQS, url) }

// Summary is the queues' and the fallback table's state, one line.
func (s *Stack) Summary() string {
	pending, _ := s.Fallback.PendingCount(context.Background())
	return fmt.Sprintf("queues: rate-limiter %d, workflows %d | DLQs: rate-limiter %d, workflows %d | fallback pending %d\n",
		s.QueueDepth(s.Queues.RateLimiter.URL), s.QueueDepth(s.Queues.Workflows.URL),
		s.QueueDepth(s.Queues.RateLimiter.DLQURL), s.QueueDepth(s.Queues.Workflows.DLQURL), pending)
}

// FunctionsOutput is what the functions' emulators and runtimes wrote
// besides their JSON lines (reports of failed tests).
func (s *Stack) FunctionsOutput() string {
	var out string
	for _, f := range []*lambdalocal.Function{s.api, s.limiter, s.replay} {
		if f != nil {
			out += f.Output()
		}
	}
	return out
}

type binaries struct {
	rie, scraper string
	bootstrap    map[string]string // by package
}

var (
	buildOnce sync.Once
	built     binaries
	buildErr  error
)

// build compiles, once per process, the emulator, each function's main
// (for this host) and the scraper.
func build(root string) (binaries, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "huntaze-devstack-")
		if err != nil {
			buildErr = err
			return
		}
		b := binaries{bootstrap: map[string]string{}}
		if b.rie, buildErr = lambdalocal.BuildRIE(root, dir); buildErr != nil {
			return
		}
		for _, l := range []infra.Lambda{infra.APIFunction, infra.LimiterFunction, infra.ReplayFunction} {
			if b.bootstrap[l.Package], buildErr = lambdalocal.BuildBootstrap(root, dir, l.Package, infra.LambdaHandler); buildErr != nil {
				return
			}
		}
		b.scraper = filepath.Join(dir, "scraper")
		cmd := exec.Command("go", "build", "-o", b.scraper, "./scraper/cmd/scraper")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build scraper: %v\n%s", err, out)
			return
		}
		built = b
	})
	return built, buildErr
}
