// Command replay moves messages from the fallback table to the queue. In
// Lambda it runs on a schedule (EventBridge); with -once it runs one pass
// and exits (`make replay`). It uses the API's settings.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/functions/api/setup"
	"github.com/huntaze/message-pipeline/internal/envconfig"
	"github.com/huntaze/message-pipeline/internal/fallback"
)

func main() {
	once := flag.Bool("once", false, "run one replay pass and exit (instead of serving Lambda events)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	s, err := setup.Load(envconfig.Process())
	if err != nil {
		log.Error("replay cannot start", "error", err)
		os.Exit(1)
	}
	awsCfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Error("replay cannot start", "error", err)
		os.Exit(1)
	}
	cfg, deps, err := setup.Build(context.Background(), s, awsCfg, log, os.Stdout)
	if err != nil || cfg.Unavailable != "" {
		log.Error("replay cannot start", "error", err, "unavailable", cfg.Unavailable)
		os.Exit(1)
	}
	run := func(ctx context.Context) (fallback.ReplayResult, error) {
		res, err := api.Replay(ctx, deps, s.ReplayBatch)
		// The scheduled run also publishes the queues' depth (seed 000 R5.5).
		api.QueueDepths(ctx, deps, cfg.Queues)
		log.Info("replay done", "replayed", res.Replayed, "failed", res.Failed, "skipped", res.Skipped, "error", err)
		return res, err
	}
	if *once {
		res, err := run(context.Background())
		fmt.Printf("replayed %d, failed %d, skipped %d\n", res.Replayed, res.Failed, res.Skipped)
		if err != nil || res.Failed > 0 {
			os.Exit(1)
		}
		return
	}
	lambda.Start(run)
}
