// Command ratelimiter is the rate limiter Lambda (provided.al2023, arm64).
// It only wires: settings and the handler come from ./setup, the logic from
// ./handler and internal/ratelimit.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/huntaze/message-pipeline/functions/ratelimiter/setup"
	"github.com/huntaze/message-pipeline/internal/awsenv"
	"github.com/huntaze/message-pipeline/internal/envconfig"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx := context.Background()
	environ := envconfig.Process()
	s, err := setup.Load(environ)
	if err != nil {
		// Failing at init makes the misconfiguration visible in the first
		// invocation's logs and in the Lambda's init error metric.
		log.Error("rate limiter cannot start", "error", err)
		os.Exit(1)
	}
	// Lambda puts the region and the role's credentials in the environment.
	awsCfg := awsenv.Config(environ)
	h, err := setup.Build(ctx, s, awsCfg, log, os.Stdout)
	if err != nil {
		log.Error("rate limiter cannot start", "error", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}
