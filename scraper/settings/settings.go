// Package settings is what the scraper's deployment gives it and must
// know of it: the task's environment (Settings, its defaults and the
// checks of its own rules), the attempts table's attributes and the
// metric names the alarms and dashboard read. It links no browser, so the
// CDK stack (infra) and the local assembly (devstack) take it without
// playwright-go; scraper/setup builds the browser-using collaborators from
// it.
package settings

import (
	"errors"
	"fmt"
	"time"

	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/redisconn"
	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
)

// Settings is the scraper's environment (the ECS task definition sets it).
type Settings struct {
	Environment       string `env:"ENVIRONMENT" envDefault:"dev"`
	WorkflowsQueueURL string `env:"WORKFLOWS_QUEUE_URL,required,notEmpty"`
	WorkflowsDLQURL   string `env:"WORKFLOWS_DLQ_URL,required,notEmpty"`
	ResultsBucket     string `env:"RESULTS_BUCKET,required,notEmpty"`
	// AttemptsTable is the DynamoDB table that keeps the attempt mark of a
	// click left unresolved and the sent mark of a message sent
	// (scraper.MarkStore): a Redis that forgets cannot let such a message
	// be clicked again blind.
	AttemptsTable string `env:"ATTEMPTS_TABLE,required,notEmpty"`
	// CapturesKey encrypts failure captures (empty: the bucket's default,
	// local runs only; the stack always sets it).
	CapturesKey string `env:"CAPTURES_KMS_KEY_ID"`
	// SiteProfile names the built-in site profile (selectors, routes,
	// cookie, login page: onlyfans.Profile, embedded in the binary:
	// scraper/onlyfans/profiles): "onlyfans" (profiles.Default, a document
	// per chat) or "onlyfans-spa" (chats switched inside the app).
	// SiteProfileFile is a profile file instead: it wins over the default
	// name, and the environment may set only one of the two. BaseURL
	// overrides the profile's base URL (local runs).
	SiteProfile     string `env:"SITE_PROFILE" envDefault:"onlyfans"`
	SiteProfileFile string `env:"SITE_PROFILE_FILE"`
	BaseURL         string `env:"ONLYFANS_BASE_URL"`
	// SessionSecretPrefix names each creator's session secret:
	// <prefix><creator> (scraper.SessionSecretName). CredentialsFile holds
	// every creator's session in one JSON file instead (local runs).
	SessionSecretPrefix string `env:"SESSION_SECRET_PREFIX"`
	CredentialsFile     string `env:"CREDENTIALS_FILE"`
	DriverDir           string `env:"PLAYWRIGHT_DRIVER_PATH" envDefault:"/opt/playwright-driver"`
	ChromiumPath        string `env:"CHROMIUM_PATH" envDefault:"/usr/lib/chromium/chromium"`
	Redis               redisconn.Settings

	PollWait       time.Duration `env:"POLL_WAIT" envDefault:"20s"`
	MaxGroups      int           `env:"MAX_GROUPS" envDefault:"4"`
	MaxFailures    int           `env:"MAX_FAILURES" envDefault:"5"`
	BackoffBase    time.Duration `env:"BACKOFF_BASE" envDefault:"30s"`
	BackoffFactor  float64       `env:"BACKOFF_FACTOR" envDefault:"2"`
	ServerAttempts int           `env:"SERVER_ATTEMPTS" envDefault:"3"`
	ServerBackoff  time.Duration `env:"SERVER_BACKOFF" envDefault:"1s"`
	// ReceiveErrorBackoff is the consumer's pause after a failed
	// ReceiveMessage before it polls again.
	ReceiveErrorBackoff time.Duration `env:"RECEIVE_ERROR_BACKOFF" envDefault:"1s"`
	// ReadBackSettle: how late the chat may show a committed send
	// (docs/scraper.md).
	ReadBackSettle   time.Duration `env:"READ_BACK_SETTLE" envDefault:"10s"`
	RateLimitDefault time.Duration `env:"RATE_LIMIT_DEFAULT" envDefault:"60s"`
	BreakerFailures  uint32        `env:"BREAKER_FAILURES" envDefault:"5"`
	BreakerOpenFor   time.Duration `env:"BREAKER_OPEN_FOR" envDefault:"60s"`
	ShutdownDeadline time.Duration `env:"SHUTDOWN_DEADLINE" envDefault:"100s"`
	RecycleAfter     int           `env:"CONTEXT_RECYCLE_AFTER" envDefault:"50"`
	// KeepContexts is how many creators keep their browser context and
	// chat page open between sends (onlyfans.Config.KeepContexts): a kept
	// page costs about 60 MiB (docs/benchmarks.md), 12 fit the task's
	// memory.
	KeepContexts int `env:"KEEP_CONTEXTS" envDefault:"12"`
	// Traces records a Playwright trace per send, kept with a failure's
	// captures (onlyfans.Config.Traces).
	Traces bool `env:"FAILURE_TRACES" envDefault:"true"`
	// ChromiumSandbox is the renderer sandbox: auto (tried, done without
	// where the platform cannot give it, logged), on (required), off.
	ChromiumSandbox string `env:"CHROMIUM_SANDBOX" envDefault:"auto"`
	// ChromiumExtraArgs are added to browser.ChromiumArgs (space separated).
	ChromiumExtraArgs []string      `env:"CHROMIUM_EXTRA_ARGS" envSeparator:" "`
	NavTimeout        time.Duration `env:"NAVIGATION_TIMEOUT" envDefault:"30s"`
	ActionTimeout     time.Duration `env:"ACTION_TIMEOUT" envDefault:"10s"`
	ResponseTimeout   time.Duration `env:"RESPONSE_TIMEOUT" envDefault:"30s"`
	LedgerTTL         time.Duration `env:"LEDGER_TTL" envDefault:"336h"`
	// Outcome records wait in memory up to RESULTS_FLUSH_EVERY or
	// RESULTS_MAX_RECORDS, then go to S3 as one JSON-lines object.
	ResultsFlushEvery time.Duration `env:"RESULTS_FLUSH_EVERY" envDefault:"60s"`
	ResultsMaxRecords int           `env:"RESULTS_MAX_RECORDS" envDefault:"1000"`
	// ResultsMaxPending bounds the records kept while S3 refuses writes
	// (the oldest are dropped, logged, beyond it): twenty flushes' worth at
	// the default RESULTS_MAX_RECORDS, about 20 MB of memory.
	ResultsMaxPending int `env:"RESULTS_MAX_PENDING" envDefault:"20000"`
	// Heartbeat is the visibility (and claim life) every received,
	// unfinished message gets again every third of it: a slow site never
	// lets another task receive a message being sent, and a task that dies
	// frees its messages within it.
	Heartbeat time.Duration `env:"HEARTBEAT_VISIBILITY" envDefault:"60s"`

	// OutageBackoff is the first delay of a message held back by something
	// that is not its fault (Redis, the breaker, a 429, the session); it
	// doubles with every receive up to 15 minutes and never dead-letters.
	OutageBackoff    time.Duration `env:"OUTAGE_BACKOFF" envDefault:"5s"`
	OutageBackoffMax time.Duration `env:"OUTAGE_BACKOFF_MAX" envDefault:"15m"`

	// PauseProbeEvery is how often a creator paused for a rejected session
	// is re-probed with the site's session check (per task): the pause lifts
	// when the check passes again.
	PauseProbeEvery time.Duration `env:"PAUSE_PROBE_EVERY" envDefault:"5m"`

	// LateCommitHorizon is how long after its click a send request that
	// got no answer (a hanging origin, a dropped connection, a crash) may
	// still land at the site: an origin keeps working after its client
	// left. Until it passed, a read-back that finds no copy says nothing
	// (the message waits, its attempt mark kept) and the request stays
	// charged to the send gate (docs/scraper.md).
	LateCommitHorizon time.Duration `env:"LATE_COMMIT_HORIZON" envDefault:"5m"`

	// ChatFaultPatience is how long one fan's chat must stay unusable (a
	// 5xx that is no gateway's, no composer, no history) while the probe
	// chat works before it counts as this message's failure; until then
	// the message waits as an outage (docs/scraper.md).
	ChatFaultPatience time.Duration `env:"CHAT_FAULT_PATIENCE" envDefault:"10m"`

	// EmptyChatPatience is how long a chat that showed no message of the
	// creator at an unknown click, and shows none now, must be seen so by
	// consecutive receives before the click is taken for not sent: an
	// empty history is also what a site whose message service answers an
	// empty list renders after a commit (review 22 W C, X C). Its clock
	// starts with the first read-back, right after the click, so a value
	// no longer than LATE_COMMIT_HORIZON costs a first message no more
	// than any unknown click's horizon (docs/scraper.md).
	EmptyChatPatience time.Duration `env:"EMPTY_CHAT_PATIENCE" envDefault:"5m"`

	// AnsweredProofPatience is how long a processing holding the site's 2xx
	// for a send whose settling Redis refused keeps trying to write that
	// proof to the mark store (the heartbeat keeps the message invisible)
	// before it releases the message with the proof in the task's memory
	// only (docs/scraper.md). It stays under SHUTDOWN_DEADLINE, so that a
	// task stopped while it tries gets to the end of it.
	AnsweredProofPatience time.Duration `env:"ANSWERED_PROOF_PATIENCE" envDefault:"60s"`

	// WorkflowsMaxReceiveCount is the workflows queue's maxReceiveCount
	// (the stack renders its own value, queues.MaxReceiveCount): a message
	// still waiting (an outage, a paused creator) a few receives before
	// it is dead-lettered by the scraper itself with its reason
	// (outage_too_long, session_rejected_too_long), so SQS's redrive, which
	// gives none, is never hit.
	WorkflowsMaxReceiveCount int `env:"WORKFLOWS_MAX_RECEIVE_COUNT" envDefault:"1000"`

	// The send gate: the OnlyFans limit, enforced on actual send times, over
	// a window widened by RATE_MARGIN so that the spread between the gate's
	// decision and the moment the site sees the send cannot put one more in
	// the site's own window (docs/design.md: measured click-to-site jitter).
	// Limit is the stack's per-creator limit, the rate limiter's too.
	Limit      ratelimit.Limit
	RateMargin time.Duration `env:"RATE_MARGIN" envDefault:"2s"`
}

// Gate returns the send gate's limiter configuration.
func (s Settings) Gate() ratelimit.Config {
	// MaxHold: an unanswered send's approval is held until its click +
	// LATE_COMMIT_HORIZON, so an emptied Redis fences the gate that much
	// longer than a span (docs/design.md section 3).
	return ratelimit.Config{Limit: s.Limit.Count, Window: s.Limit.Window, Margin: s.RateMargin, KeyPrefix: "gate:" + s.Environment, MaxHold: s.LateCommitHorizon, ChargeAhead: s.LateCommitHorizon}
}

// Parse reads the environment and reports every setting that breaks the
// settings' own rules. The settings come back even with errors, so that
// the wiring (scraper/setup.Load) can add what the browser and the
// consumer say of the same settings and name every problem at once.
func Parse(environ map[string]string) (Settings, []error) {
	s, errs := envconfig.Parse[Settings](environ)
	if (s.SessionSecretPrefix == "") == (s.CredentialsFile == "") {
		errs = append(errs, errors.New("set exactly one of SESSION_SECRET_PREFIX and CREDENTIALS_FILE"))
	}
	errs = append(errs, profileErrors(environ, s)...)
	if s.Redis.Addr == "" {
		errs = append(errs, errors.New("REDIS_ADDR is required (failure counts and the sent ledger live there)"))
	}
	if err := s.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if s.ShutdownDeadline >= 120*time.Second {
		errs = append(errs, fmt.Errorf("SHUTDOWN_DEADLINE must stay under the 120s ECS stopTimeout, got %s", s.ShutdownDeadline))
	}
	if s.AnsweredProofPatience >= s.ShutdownDeadline {
		// A task stopped while it tries a proof must get to the end of its
		// patience before its work is abandoned (review 22 P C).
		errs = append(errs, fmt.Errorf("ANSWERED_PROOF_PATIENCE (%s) must stay under SHUTDOWN_DEADLINE (%s)", s.AnsweredProofPatience, s.ShutdownDeadline))
	}
	if s.EmptyChatPatience > s.ChatFaultPatience {
		// An empty chat waits as a chat behind the click, which counts as
		// the message's failure past CHAT_FAULT_PATIENCE.
		errs = append(errs, fmt.Errorf("EMPTY_CHAT_PATIENCE (%s) must not exceed CHAT_FAULT_PATIENCE (%s)", s.EmptyChatPatience, s.ChatFaultPatience))
	}
	if s.MaxFailures < 1 || s.BackoffFactor < 1 || s.ServerAttempts < 1 || s.BreakerFailures < 1 {
		errs = append(errs, errors.New("MAX_FAILURES, SERVER_ATTEMPTS, BREAKER_FAILURES must be ≥ 1 and BACKOFF_FACTOR ≥ 1"))
	}
	if err := s.Gate().Validate(); err != nil {
		errs = append(errs, err)
	}
	return s, errs
}

// profileErrors: the environment names a profile or gives a file, never
// both (which would win is a guess it must not leave open), and a name is
// one the binary has built in.
func profileErrors(environ map[string]string, s Settings) []error {
	if environ["SITE_PROFILE"] != "" && environ["SITE_PROFILE_FILE"] != "" {
		return []error{errors.New("set at most one of SITE_PROFILE (a built-in profile) and SITE_PROFILE_FILE (a profile file)")}
	}
	if s.SiteProfileFile != "" {
		return nil
	}
	if _, err := profiles.Lookup(s.SiteProfile); err != nil {
		return []error{fmt.Errorf("SITE_PROFILE: %w", err)}
	}
	return nil
}

// Load parses and checks the environment by the settings' own rules; the
// scraper itself loads it with scraper/setup.Load, which checks the site
// profile, the browser options and the consumer's limits as well.
func Load(environ map[string]string) (Settings, error) {
	s, errs := Parse(environ)
	if len(errs) > 0 {
		return Settings{}, Error(errs)
	}
	return s, nil
}

// Error is the one error a load with errs reports.
func Error(errs []error) error {
	return fmt.Errorf("scraper settings: %w", errors.Join(errs...))
}

// Defaults are the settings every variable left unset gives.
func Defaults() Settings { return envconfig.Defaults[Settings]() }

// Env renders the settings as the task's environment.
func (s Settings) Env() map[string]string { return envconfig.Environ(s) }

// LedgerPrefix is where the scraper's ledger (scraper.Ledger) keeps its
// keys in Redis.
func (s Settings) LedgerPrefix() string { return "scraper:" + s.Environment }

// LedgerEpochKey is the ledger's key under prefix that holds the
// Redis-side start of the ledger: set to 0 (scraper.Ledger.PrimeEpoch), it
// says this Redis has served the ledger all along. The local assembly
// primes a new Redis with it, as it primes the gate's fence.
func LedgerEpochKey(prefix string) string { return prefix + ":epoch" }
