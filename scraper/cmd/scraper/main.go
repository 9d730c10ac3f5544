// Command scraper is the ECS service: it consumes the workflows FIFO queue
// and sends messages through Chromium. SIGTERM (ECS stop, Spot reclaim)
// stops receiving, lets in-flight messages finish within SHUTDOWN_DEADLINE,
// releases the rest, closes the browser and exits 0. The wiring is in
// ../../setup.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/scraper/setup"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := run(log); err != nil {
		log.Error("scraper stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	environ := envconfig.Process()
	s, err := setup.Load(environ)
	if err != nil {
		return err
	}
	stop, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(stop)
	if err != nil {
		return err
	}
	return setup.Run(stop, s, setup.Platform{
		AWS: awsCfg, Log: log, Metrics: os.Stdout,
		S3PathStyle: environ["AWS_ENDPOINT_URL"] != "" || environ["AWS_ENDPOINT_URL_S3"] != "",
	})
}
