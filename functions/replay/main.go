// Command replay moves messages from the fallback table to the queue. In
// Lambda it runs on a schedule (EventBridge); with -once it runs one pass
// and exits (`make replay`). It only wires: settings and the job come from
// ./setup (the queues and the fallback table, nothing of the API's
// authentication), the logic from internal/replay.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/huntaze/message-pipeline/functions/replay/setup"
	"github.com/huntaze/message-pipeline/internal/awsenv"
	"github.com/huntaze/message-pipeline/internal/envconfig"
)

func main() {
	once := flag.Bool("once", false, "run one replay pass and exit (instead of serving Lambda events)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	environ := envconfig.Process()
	s, err := setup.Load(environ)
	if err != nil {
		log.Error("replay cannot start", "error", err)
		os.Exit(1)
	}
	// Lambda puts the region and the role's credentials in the environment.
	awsCfg := awsenv.Config(environ)
	job, err := setup.Build(context.Background(), s, awsCfg, log, os.Stdout)
	if err != nil {
		log.Error("replay cannot start", "error", err)
		os.Exit(1)
	}
	if *once {
		res, err := job.Run(context.Background())
		fmt.Printf("replayed %d, failed %d, skipped %d\n", res.Replayed, res.Failed, res.Skipped)
		if err != nil || res.Failed > 0 {
			os.Exit(1)
		}
		return
	}
	lambda.Start(job.Run)
}
