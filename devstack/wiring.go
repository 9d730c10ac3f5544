package devstack

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	apihandler "github.com/huntaze/message-pipeline/functions/api/handler"
	apisetup "github.com/huntaze/message-pipeline/functions/api/setup"
	limitersetup "github.com/huntaze/message-pipeline/functions/ratelimiter/setup"
	"github.com/huntaze/message-pipeline/infra"
	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/redisconn"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// The environment the local assembly runs, and the names its emulators
// give the stack's tables and bucket (the stack's names in dev).
const (
	Environment      = infra.DefaultEnvironment
	Bucket           = "huntaze-results-dev"
	FallbackTable    = "huntaze-message-fallback-dev"
	IdempotencyTable = "huntaze-idempotency-dev"
	// AttemptsTable keeps the scraper's marks of unresolved clicks.
	AttemptsTable = "huntaze-scraper-attempts-dev"
)

// stackEnvironment is the stack's own configuration of the environment
// the local assembly runs (limits, API share, issuer and audience).
func stackEnvironment() (infra.Environment, error) { return infra.LookupEnvironment(Environment) }

// Scale is the local run's time compression: Window replaces the stack's
// per-creator window, and every duration the pipeline waits on purpose (a
// margin, a slack, a backoff and its cap, the breaker, the session probe,
// the per-caller window, the flag cache, the schedule, the long poll, the
// read-back settle: the fake site shows a send at once) keeps its share of
// the window. What measures the outside world (network, browser and
// Lambda timeouts, visibility heartbeats, TTLs) keeps its default.
type Scale struct {
	From, To time.Duration
}

// Of is d scaled (d itself when nothing is scaled).
func (s Scale) Of(d time.Duration) time.Duration {
	if s.From <= 0 || s.To <= 0 || s.From == s.To {
		return d
	}
	return time.Duration(float64(d) * float64(s.To) / float64(s.From))
}

// Wiring is every component's settings in the local stack: the stack's
// (infra's one wiring path, from the same defaults) with local resources,
// and only endpoints and scaled windows changed.
type Wiring struct {
	Env     infra.Environment
	Scale   Scale
	API     apisetup.Settings // the replay's too, as in the stack
	Limiter limitersetup.Settings
	Scraper scrapersettings.Settings
}

// LocalResources are the local names of the stack's resources, with the
// emulators' queue URLs and Redis address where known (placeholders
// otherwise: the names, not the addresses, are what is compared).
func LocalResources() infra.Resources {
	return localResources("http://127.0.0.1:1/000000000000/intake", "http://127.0.0.1:1/000000000000/intake-dlq",
		"http://127.0.0.1:1/000000000000/workflows", "http://127.0.0.1:1/000000000000/workflows-dlq", "127.0.0.1:1")
}

func localResources(q, qDLQ, w, wDLQ, redisAddr string) infra.Resources {
	r := envconfig.Defaults[redisconn.Settings]()
	r.Addr, r.TLS = redisAddr, false // a local redis-server: no TLS, no AUTH
	return infra.Resources{
		IntakeQueueURL: q, IntakeDLQURL: qDLQ, WorkflowsQueueURL: w, WorkflowsDLQURL: wDLQ,
		FallbackTable: FallbackTable, IdempotencyTable: IdempotencyTable,
		FlagParameter: infra.FlagParameterName(Environment), Redis: r, ResultsBucket: Bucket, AttemptsTable: AttemptsTable,
	}
}

// Wire renders the settings of env's components for resources, with the
// per-creator window scaled to window (0: the stack's) and the outage cap
// set to outageMax (0: scaled like the rest).
func Wire(env infra.Environment, r infra.Resources, window, outageMax time.Duration) Wiring {
	w := Wiring{Env: env, Scale: Scale{From: env.SendLimit.Window, To: window}}
	sc := w.Scale.Of
	limit := env.SendLimit
	limit.Window = sc(limit.Window)

	w.API = env.APISettings(r)
	w.API.Limit = limit
	w.API.CallerWindow = sc(w.API.CallerWindow)
	w.API.FlagCacheTTL = sc(w.API.FlagCacheTTL)
	w.API.SendMaxBackoff = sc(w.API.SendMaxBackoff)

	w.Limiter = env.LimiterSettings(r)
	w.Limiter.Limit = limit
	w.Limiter.ReturnSlack = sc(w.Limiter.ReturnSlack)
	w.Limiter.OutageBackoff = sc(w.Limiter.OutageBackoff)
	w.Limiter.OutageBackoffMax = sc(w.Limiter.OutageBackoffMax)
	w.Limiter.FlagCacheTTL = sc(w.Limiter.FlagCacheTTL)

	w.Scraper = env.ScraperSettings(r)
	w.Scraper.Limit = limit
	w.Scraper.RateMargin = sc(w.Scraper.RateMargin)
	w.Scraper.OutageBackoff = sc(w.Scraper.OutageBackoff)
	w.Scraper.OutageBackoffMax = sc(w.Scraper.OutageBackoffMax)
	w.Scraper.BackoffBase = sc(w.Scraper.BackoffBase)
	w.Scraper.ServerBackoff = sc(w.Scraper.ServerBackoff)
	w.Scraper.ReceiveErrorBackoff = sc(w.Scraper.ReceiveErrorBackoff)
	w.Scraper.RateLimitDefault = sc(w.Scraper.RateLimitDefault)
	w.Scraper.BreakerOpenFor = sc(w.Scraper.BreakerOpenFor)
	w.Scraper.PauseProbeEvery = sc(w.Scraper.PauseProbeEvery)
	w.Scraper.ReadBackSettle = sc(w.Scraper.ReadBackSettle)
	w.Scraper.LateCommitHorizon = sc(w.Scraper.LateCommitHorizon)
	w.Scraper.ChatFaultPatience = sc(w.Scraper.ChatFaultPatience)
	w.Scraper.EmptyChatPatience = sc(w.Scraper.EmptyChatPatience)
	w.Scraper.AnsweredProofPatience = sc(w.Scraper.AnsweredProofPatience)
	w.Scraper.PollWait = max(sc(w.Scraper.PollWait).Truncate(time.Second), time.Second) // SQS long polls in whole seconds
	if outageMax > 0 {
		w.Limiter.OutageBackoffMax, w.Scraper.OutageBackoffMax = outageMax, outageMax
	}
	return w
}

// ReplayEvery is the replay schedule's period, scaled.
func (w Wiring) ReplayEvery() time.Duration { return w.Scale.Of(infra.ReplayEvery) }

// Event is how a function is invoked: the event source the stack gives it.
type Event struct {
	// Kind is "sqs" (the limiter's event source mapping), "http-api" (the
	// HTTP API with its JWT authorizer, payload format 2.0) or "schedule"
	// (an EventBridge rule).
	Kind string
	// sqs
	BatchSize               int
	BatchingWindow          time.Duration
	ReportBatchItemFailures bool
	MaxConcurrency          int
	// http-api
	Routes        []string
	PayloadFormat string
	Issuer        string
	Audiences     []string
	// schedule
	Every time.Duration
}

// Function is one Lambda as the assembly runs it.
type Function struct {
	infra.Lambda
	Handler string
	// Env is the function's environment from its settings (what the stack
	// renders into the template), before the local endpoints are added.
	Env   map[string]string
	Event Event
}

// Functions are the Lambdas the assembly runs (the session health and
// rotation functions need Secrets Manager and stay out).
func (w Wiring) Functions() []Function {
	return []Function{
		{Lambda: infra.APIFunction, Handler: infra.LambdaHandler, Env: infra.FunctionEnvironment(w.Env.Name, w.API.Env()), Event: Event{
			Kind: "http-api", PayloadFormat: "2.0", Issuer: w.Env.JWTIssuer, Audiences: []string{w.Env.JWTAudience},
			Routes: []string{"POST " + apihandler.PathSend, "GET " + apihandler.PathStatus, "POST " + apihandler.PathReplay},
		}},
		{Lambda: infra.LimiterFunction, Handler: infra.LambdaHandler, Env: infra.FunctionEnvironment(w.Env.Name, w.Limiter.Env()), Event: Event{
			Kind: "sqs", BatchSize: infra.LimiterBatchSize, BatchingWindow: infra.LimiterBatchingWindow,
			ReportBatchItemFailures: true, MaxConcurrency: w.Env.LimiterMaxConcurrency,
		}},
		{Lambda: infra.ReplayFunction, Handler: infra.LambdaHandler, Env: infra.FunctionEnvironment(w.Env.Name, w.API.Replay().Env()), Event: Event{Kind: "schedule", Every: w.ReplayEvery()}},
	}
}

// The local issuer: one key per process, so that Token needs no stack.
var (
	signingKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })
	keyID      = "local-dev"
)

// Token returns an API token for user (scope "admin" when admin), granted
// to send as the given creators (the "creators" claim the Next.js app puts
// in the tokens it mints), from the issuer and for the audience the dev
// stack's authorizer trusts, signed with this machine's key (which only
// the local front's JWKS holds: no deployed API accepts it).
func Token(user string, admin bool, creators ...string) string {
	env, err := stackEnvironment()
	if err != nil {
		panic(fmt.Sprintf("devstack: %v", err))
	}
	key, err := signingKey()
	if err != nil {
		panic(fmt.Sprintf("devstack: signing key: %v", err))
	}
	claims := jwt.MapClaims{"sub": user, "iss": env.JWTIssuer, "aud": env.JWTAudience, "exp": time.Now().Add(24 * time.Hour).Unix(), "creators": creators}
	if admin {
		claims["scope"] = "admin"
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = keyID
	s, err := t.SignedString(key)
	if err != nil {
		panic(fmt.Sprintf("devstack: sign: %v", err))
	}
	return s
}
