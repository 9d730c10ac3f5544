package infra

import (
	"time"

	apisetup "github.com/huntaze/message-pipeline/functions/api/setup"
	limitersetup "github.com/huntaze/message-pipeline/functions/ratelimiter/setup"
	replaysetup "github.com/huntaze/message-pipeline/functions/replay/setup"
	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/internal/redisconn"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// One wiring path (docs/design.md, section 5): the settings every
// component runs with are made here, from the environment and the
// resources they point at. The stack passes CDK tokens as the resources
// and renders the settings into each function's and the task's
// environment; the local assembly (devstack) passes its emulators' names
// and URLs, and changes only endpoints and scaled windows. Nothing in
// this file touches the CDK.

// Resources are what the components' settings name: queue URLs, tables,
// the flag parameter, the cache, the bucket.
type Resources struct {
	IntakeQueueURL, IntakeDLQURL       string
	WorkflowsQueueURL, WorkflowsDLQURL string
	FallbackTable, IdempotencyTable    string
	FlagParameter                      string
	Redis                              redisconn.Settings
	ResultsBucket, CapturesKey         string
	AttemptsTable                      string
	SessionSecretPrefix                string
}

// APISettings are the API's settings (the replay's too).
func (e Environment) APISettings(r Resources) apisetup.Settings {
	s := apisetup.Defaults()
	s.Environment = e.Name
	s.IntakeQueueURL, s.IntakeDLQURL = r.IntakeQueueURL, r.IntakeDLQURL
	s.WorkflowsQueueURL, s.WorkflowsDLQURL = r.WorkflowsQueueURL, r.WorkflowsDLQURL
	s.FallbackTable, s.IdempotencyTable = r.FallbackTable, r.IdempotencyTable
	s.FlagParameter = r.FlagParameter
	s.CallerRequests, s.CallerWindow = e.API.CallerRequests, e.API.CallerWindow
	s.Limit = e.SendLimit
	return s
}

// ReplaySettings are the replay's settings: the part of the API's that
// replaying the fallback table needs.
func (e Environment) ReplaySettings(r Resources) replaysetup.Settings {
	return e.APISettings(r).Replay()
}

// LimiterSettings are the rate limiter's settings.
func (e Environment) LimiterSettings(r Resources) limitersetup.Settings {
	s := limitersetup.Defaults()
	s.Environment = e.Name
	s.IntakeQueueURL, s.IntakeDLQURL = r.IntakeQueueURL, r.IntakeDLQURL
	s.WorkflowsQueueURL = r.WorkflowsQueueURL
	s.Redis = r.Redis
	s.FlagParameter = r.FlagParameter
	s.Limit = e.SendLimit
	return s
}

// ScraperSettings are the scraper task's settings.
func (e Environment) ScraperSettings(r Resources) scrapersettings.Settings {
	s := scrapersettings.Defaults()
	s.Environment = e.Name
	s.WorkflowsQueueURL, s.WorkflowsDLQURL = r.WorkflowsQueueURL, r.WorkflowsDLQURL
	s.WorkflowsMaxReceiveCount = queues.Workflows(e.Name).MaxReceiveCount
	s.ResultsBucket, s.CapturesKey = r.ResultsBucket, r.CapturesKey
	s.AttemptsTable = r.AttemptsTable
	s.Redis = r.Redis
	s.SessionSecretPrefix = r.SessionSecretPrefix
	s.SiteProfile = e.ScraperProfile
	s.Limit = e.SendLimit
	return s
}

// FlagParameterName is the SSM parameter holding RATE_LIMITER_ENABLED.
func FlagParameterName(env string) string { return "/huntaze/" + env + "/rate-limiter-enabled" }

// FunctionEnvironment is a function's environment: its rendered settings
// and the environment's name, which every function gets.
func FunctionEnvironment(env string, settings map[string]string) map[string]string {
	out := map[string]string{"ENVIRONMENT": env}
	for k, v := range settings {
		out[k] = v
	}
	return out
}

// LambdaHandler is every Go Lambda's handler: the bundled main's file
// name on provided.al2023.
const LambdaHandler = "bootstrap"

// Lambda is what the stack and the local assembly both know of a
// function: its main package, name, timeout and memory.
type Lambda struct {
	ID, Package, Name, Description string
	Timeout                        time.Duration
	MemoryMB                       int
}

// FunctionName is the function's name in env.
func (l Lambda) FunctionName(env string) string { return queues.Name(l.Name, env) }

// The functions.
var (
	APIFunction = Lambda{ID: "Api", Package: "functions/api", Name: "huntaze-messages-api",
		Description: "POST /send, GET /status, POST /replay", Timeout: APITimeoutSeconds * time.Second, MemoryMB: 256}
	ReplayFunction = Lambda{ID: "Replay", Package: "functions/replay", Name: "huntaze-fallback-replay",
		Description: "Replays the fallback table to the queue (every 5 minutes)", Timeout: ReplayTimeoutSeconds * time.Second, MemoryMB: 256}
	LimiterFunction = Lambda{ID: "RateLimiter", Package: "functions/ratelimiter", Name: "huntaze-rate-limiter",
		Description: "10 messages per rolling minute per creator; forwards to the FIFO queue", Timeout: LimiterTimeoutSeconds * time.Second, MemoryMB: 256}
)

// The limiter's event source mapping on the intake queue, with partial
// batch responses (ReportBatchItemFailures), and the replay's schedule.
const (
	LimiterBatchSize      = 10
	LimiterBatchingWindow = 0 * time.Second
	ReplayEvery           = 5 * time.Minute
)
