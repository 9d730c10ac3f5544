package setup

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/redisconn"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/scraper/settings"
)

// Platform is what the process gives the scraper besides its settings.
type Platform struct {
	AWS aws.Config
	// S3PathStyle addresses buckets by path (emulators); AWS uses virtual
	// hosts.
	S3PathStyle bool
	Log         *slog.Logger
	Metrics     io.Writer // EMF lines (stdout in ECS)
}

// Run consumes until stop ends, then lets in-flight messages finish within
// ShutdownDeadline, releases the rest and closes the browser.
func Run(stop context.Context, s settings.Settings, p Platform) error {
	log := p.Log
	work, cancelWork := context.WithCancel(context.WithoutCancel(stop))
	defer cancelWork()

	secrets := secretsmanager.NewFromConfig(p.AWS)
	rdb, err := redisconn.Connect(stop, s.Redis, secrets)
	if err != nil {
		return err
	}
	defer rdb.Close()
	creds, err := credentials(s, secrets)
	if err != nil {
		return err
	}
	sender, err := startBrowser(s, log)
	if err != nil {
		return err
	}
	defer closeBrowser(sender, log)
	ddb := dynamodb.NewFromConfig(p.AWS)
	gate, err := ratelimit.NewShared(rdb, s.Gate(), scraper.NewDynamoGateServers(ddb, s.AttemptsTable))
	if err != nil {
		return err
	}
	emf := metrics.New(p.Metrics, map[string]string{"Service": "scraper", "Environment": s.Environment}, time.Now)
	owner := uuid.NewString()
	results, err := scraper.NewResults(s3.NewFromConfig(p.AWS, func(o *s3.Options) { o.UsePathStyle = p.S3PathStyle }), Results(s, owner), log, time.Now)
	if err != nil {
		return err
	}
	go results.Run(work)
	defer flushLastResults(results, log)
	ledger := Ledger(s, rdb)
	marks := scraper.NewDynamoMarks(ddb, s.AttemptsTable, s.LedgerTTL, time.Now)
	proc, err := scraper.NewProcessor(Processor(s), sender, gate, creds, ledger, marks, results, log, emf, time.Now)
	if err != nil {
		return err
	}
	cc := Consumer(s)
	cc.Owner = owner
	consumer := scraper.NewConsumer(cc, sqs.NewFromConfig(p.AWS), ledger, proc, log)

	go abandonAtShutdownDeadline(stop, work, cancelWork, s.ShutdownDeadline, log)
	log.Info("scraper started", "queue_url", s.WorkflowsQueueURL, "max_groups", s.MaxGroups, "environment", s.Environment)
	consumer.Run(stop, work)
	log.Info("scraper stopped cleanly")
	return nil
}

// startBrowser starts the sender's browser and logs whether its renderers
// are sandboxed.
func startBrowser(s settings.Settings, log *slog.Logger) (*onlyfans.Sender, error) {
	senderCfg, err := Sender(s)
	if err != nil {
		return nil, err
	}
	sender, err := onlyfans.New(senderCfg)
	if err != nil {
		return nil, err
	}
	if err := sender.Start(); err != nil {
		return nil, err
	}
	if sandboxed, why := sender.Sandboxed(); sandboxed {
		log.Info("chromium renderers sandboxed")
	} else {
		// docs/scraper.md: what Fargate allows.
		log.Warn("chromium renderers run without their sandbox", "sandbox", senderCfg.Browser.Sandbox, "reason", fmt.Sprint(why))
	}
	return sender, nil
}

func closeBrowser(sender *onlyfans.Sender, log *slog.Logger) {
	if err := sender.Close(); err != nil {
		log.Warn("browser close", "error", err)
	}
	log.Info("browser closed")
}

// flushLastResults writes the last records, after the last send: with a
// fresh deadline, since work may have been cancelled at the shutdown
// deadline.
func flushLastResults(results *scraper.Results, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := results.Flush(ctx); err != nil {
		log.Error("last results not written (the outcomes are in the logs)", "error", err)
	}
}

// abandonAtShutdownDeadline waits for stop, then gives in-flight work
// deadline to finish before cancelling it.
func abandonAtShutdownDeadline(stop, work context.Context, cancelWork context.CancelFunc, deadline time.Duration, log *slog.Logger) {
	<-stop.Done()
	log.Info("stop signal: no new receives; finishing in-flight messages", "deadline", deadline.String())
	t := time.NewTimer(deadline)
	defer t.Stop()
	select {
	case <-t.C:
		log.Warn("shutdown deadline reached; abandoning in-flight work")
		cancelWork()
	case <-work.Done():
	}
}

func credentials(s settings.Settings, secrets *secretsmanager.Client) (scraper.CredentialStore, error) {
	if s.CredentialsFile != "" {
		return scraper.FileCredentials(s.CredentialsFile)
	}
	return &scraper.SecretsManagerCredentials{Client: secrets, Prefix: s.SessionSecretPrefix, TTL: 5 * time.Minute}, nil
}
