// Command redrive moves the messages of a dead-letter queue back to their
// source queue after printing their counts by failure_reason; -dry-run
// prints the counts only. `make redrive QUEUE=workflows ENV=prod DRY_RUN=1`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/internal/redrive"
)

func main() {
	queue := flag.String("queue", "", "which dead-letter queue: intake (rate limiter) or workflows (scraper)")
	env := flag.String("env", "", "environment: dev, staging or prod")
	dryRun := flag.Bool("dry-run", false, "count by failure_reason, move nothing")
	maxMessages := flag.Int("max", 0, "look at most this many messages (0: all)")
	hold := flag.Duration("hold", redrive.DefaultHold, "how long a received DLQ message stays invisible while it is moved")
	flag.Parse()
	if err := run(*queue, *env, *dryRun, *maxMessages, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "redrive:", err)
		os.Exit(1)
	}
}

func run(queue, env string, dryRun bool, maxMessages int, hold time.Duration) error {
	var pair queues.Pair
	switch queue {
	case "intake", "rate-limiter":
		pair = queues.RateLimiter(env)
	case "workflows":
		pair = queues.Workflows(env)
	default:
		return fmt.Errorf("QUEUE must be intake or workflows, got %q", queue)
	}
	if env == "" {
		return fmt.Errorf("ENV is required (dev, staging or prod)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	client := sqs.NewFromConfig(awsCfg)
	url := func(name string) (string, error) {
		out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if err != nil {
			return "", fmt.Errorf("queue %s: %w", name, err)
		}
		return aws.ToString(out.QueueUrl), nil
	}
	dlq, err := url(pair.DeadLetter.Name)
	if err != nil {
		return err
	}
	source, err := url(pair.Main.Name)
	if err != nil {
		return err
	}
	rep, err := redrive.Run(ctx, client, redrive.Config{DeadLetterURL: dlq, SourceURL: source, DryRun: dryRun, Max: maxMessages, Hold: hold})
	fmt.Printf("%s → %s\n%8s  failure_reason\n", pair.DeadLetter.Name, pair.Main.Name, "messages")
	for _, r := range rep.Reasons() {
		fmt.Printf("%8d  %s\n", rep.ByReason[r], r)
	}
	if dryRun {
		fmt.Printf("dry run: %d of the DLQ's %d messages seen, none moved (they are visible in the DLQ again; a FIFO group shows its first messages only while they are held)\n", rep.Seen, rep.Total)
	} else {
		fmt.Printf("%d seen, %d moved back, %d failed\n", rep.Seen, rep.Moved, rep.Failed)
	}
	return err
}
