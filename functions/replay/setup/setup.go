// Package setup is the replay's wiring: its settings (the Lambda's
// environment, which the CDK stack renders from the same struct) and
// Build, which the replay's main (scheduled, or -once for `make replay`)
// and the local stack call. The replay needs the queues and the fallback
// table only; the API's settings embed these (its /replay route and its
// sends use the same), never the other way round.
package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/internal/enqueue"
	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/queuedepth"
	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/internal/replay"
)

// Settings is the replay's environment.
type Settings struct {
	Environment string `env:"ENVIRONMENT" envDefault:"dev"`

	IntakeQueueURL    string `env:"INTAKE_QUEUE_URL"`
	IntakeDLQURL      string `env:"INTAKE_DLQ_URL"`
	WorkflowsQueueURL string `env:"WORKFLOWS_QUEUE_URL"`
	WorkflowsDLQURL   string `env:"WORKFLOWS_DLQ_URL"`
	FallbackTable     string `env:"FALLBACK_TABLE"`

	// SendMaxBackoff caps the SQS client's backoff between retries.
	SendMaxBackoff time.Duration `env:"SEND_MAX_BACKOFF" envDefault:"2s"`
	// ReplayBatch is how many items per creator (and creators) one run
	// replays.
	ReplayBatch int `env:"REPLAY_BATCH" envDefault:"100"`
}

// Load parses the environment; the replay cannot run without every queue
// (it publishes their depth) and the fallback table.
func Load(environ map[string]string) (Settings, error) {
	s, errs := envconfig.Parse[Settings](environ)
	if m := s.Missing(); len(m) > 0 {
		errs = append(errs, errors.New(strings.Join(m, ", ")+" not set"))
	}
	if len(errs) > 0 {
		return Settings{}, fmt.Errorf("replay settings: %w", errors.Join(errs...))
	}
	return s, nil
}

// Missing names the variables without which nothing can be queued or
// replayed, sorted.
func (s Settings) Missing() []string {
	var m []string
	for name, v := range map[string]string{
		"INTAKE_QUEUE_URL": s.IntakeQueueURL, "INTAKE_DLQ_URL": s.IntakeDLQURL,
		"WORKFLOWS_QUEUE_URL": s.WorkflowsQueueURL, "WORKFLOWS_DLQ_URL": s.WorkflowsDLQURL,
		"FALLBACK_TABLE": s.FallbackTable,
	} {
		if v == "" {
			m = append(m, name)
		}
	}
	slices.Sort(m)
	return m
}

// Defaults are the settings every variable left unset gives.
func Defaults() Settings { return envconfig.Defaults[Settings]() }

// Env renders the settings as the function's environment.
func (s Settings) Env() map[string]string { return envconfig.Environ(s) }

// Queues are the four queues' URLs.
func (s Settings) Queues() queues.URLs {
	return queues.URLs{IntakeQueueURL: s.IntakeQueueURL, IntakeDLQURL: s.IntakeDLQURL, WorkflowsQueueURL: s.WorkflowsQueueURL, WorkflowsDLQURL: s.WorkflowsDLQURL}
}

// Sender returns the intake queue's sender: the SQS client retries with
// backoff up to SendMaxBackoff (enqueue.Retryer).
func (s Settings) Sender(awsCfg aws.Config) *enqueue.Sender {
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.Retryer = enqueue.Retryer(s.SendMaxBackoff)() })
	return enqueue.NewSender(client, s.IntakeQueueURL, 100*time.Millisecond)
}

// Fallback returns the fallback table's store.
func (s Settings) Fallback(ddb fallback.DynamoDBAPI, log *slog.Logger) *fallback.Store {
	st := fallback.NewStore(ddb, s.FallbackTable, time.Now, 2*time.Minute)
	st.Log = log
	return st
}

// MetricsService is the Service dimension of the replay's metrics: the
// API's, whose route runs the same replay, so the dashboard's queue depths
// and replay counts are one series whoever published them.
const MetricsService = "api"

// Job is one scheduled run: the replay, then the queues' depths.
type Job struct {
	Replayer replay.Replayer
	Depths   queuedepth.Reader
	Queues   queues.URLs
	Batch    int
	Log      *slog.Logger
}

// Build makes the job from settings and an AWS configuration (the default
// chain in Lambda, local endpoints in `make dev`); EMF metrics go to
// metricsOut. Without credentials it fails: a replay that cannot send
// must show in the Lambda's errors.
func Build(ctx context.Context, s Settings, awsCfg aws.Config, log *slog.Logger, metricsOut io.Writer) (*Job, error) {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := awsCfg.Credentials.Retrieve(cctx); err != nil {
		return nil, fmt.Errorf("no AWS credentials: %w", err)
	}
	emf := metrics.New(metricsOut, map[string]string{"Service": MetricsService, "Environment": s.Environment}, time.Now)
	return &Job{
		Replayer: replay.Replayer{Sender: s.Sender(awsCfg), Store: s.Fallback(dynamodb.NewFromConfig(awsCfg), log), Log: log, Metrics: emf},
		Depths:   queuedepth.Reader{Stats: sqs.NewFromConfig(awsCfg), Log: log, Metrics: emf},
		Queues:   s.Queues(), Batch: s.ReplayBatch, Log: log,
	}, nil
}

// Run replays the fallback table, then publishes the queues' depth (seed
// 000 R5.5: a point at least every 5 minutes).
func (j *Job) Run(ctx context.Context) (fallback.ReplayResult, error) {
	res, err := j.Replayer.Run(ctx, j.Batch)
	j.Depths.Read(ctx, j.Queues)
	j.Log.InfoContext(ctx, "replay done", "replayed", res.Replayed, "failed", res.Failed, "skipped", res.Skipped, "error", err)
	return res, err
}
