// Command scraper is the ECS service: it consumes the workflows FIFO queue
// and sends messages through Chromium. SIGTERM (ECS stop, Spot reclaim)
// stops receiving, lets in-flight messages finish within SHUTDOWN_DEADLINE,
// releases the rest, closes the browser and exits 0.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/internal/redisconn"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log); err != nil {
		log.Error("scraper stopped", "error", err)
		os.Exit(1)
	}
}

func environ() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

func run(log *slog.Logger) error {
	envs := environ()
	s, err := LoadSettings(envs)
	if err != nil {
		return err
	}
	stop, cancelStop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancelStop()
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()

	awsCfg, err := config.LoadDefaultConfig(stop)
	if err != nil {
		return err
	}
	secrets := secretsmanager.NewFromConfig(awsCfg)
	rdb, err := redisconn.Connect(stop, s.Redis, secrets)
	if err != nil {
		return err
	}
	defer rdb.Close()
	var creds scraper.CredentialStore
	if s.CredentialsFile != "" {
		if creds, err = scraper.FileCredentials(s.CredentialsFile); err != nil {
			return err
		}
	} else {
		creds = &scraper.SecretsManagerCredentials{Client: secrets, SecretID: s.CredentialsARN, TTL: 5 * time.Minute}
	}
	sender := onlyfans.New(s.Sender())
	if err := sender.Start(); err != nil {
		return err
	}
	defer func() {
		if err := sender.Close(); err != nil {
			log.Warn("browser close", "error", err)
		}
		log.Info("browser closed")
	}()

	gate, err := ratelimit.New(rdb, s.Gate())
	if err != nil {
		return err
	}
	emf := metrics.New(os.Stdout, map[string]string{"Service": "scraper", "Environment": s.Environment}, time.Now)
	proc := scraper.NewProcessor(s.Processor(), sender, gate, creds,
		scraper.NewLedger(rdb, "scraper:"+s.Environment, s.LedgerTTL),
		scraper.Results{S3: s3.NewFromConfig(awsCfg, func(o *s3.Options) {
			// Emulators serve buckets by path; AWS by virtual host.
			o.UsePathStyle = envs["AWS_ENDPOINT_URL"] != "" || envs["AWS_ENDPOINT_URL_S3"] != ""
		}), Bucket: s.ResultsBucket},
		log, emf, time.Now)
	consumer := scraper.NewConsumer(s.Consumer(), sqs.NewFromConfig(awsCfg), proc, log)

	go func() {
		<-stop.Done()
		log.Info("stop signal: no new receives; finishing in-flight messages", "deadline", s.ShutdownDeadline.String())
		t := time.NewTimer(s.ShutdownDeadline)
		defer t.Stop()
		select {
		case <-t.C:
			log.Warn("shutdown deadline reached; abandoning in-flight work")
			cancelWork()
		case <-work.Done():
		}
	}()
	log.Info("scraper started", "queue_url", s.QueueURL, "max_groups", s.MaxGroups, "environment", s.Environment)
	consumer.Run(stop, work)
	log.Info("scraper stopped cleanly")
	return nil
}
