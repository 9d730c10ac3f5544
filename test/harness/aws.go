package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/queues"
)

// Region is the region every emulated client uses.
const Region = "us-east-1"

// AWSConfig returns an SDK config with static credentials and no shared
// config files read, so a developer's real AWS profile is never used.
func AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		// Up to 3 attempts, for one reason: Go's transport sometimes closes a
		// connection while a 200 response body is being read ("use of closed
		// network connection", aws/aws-sdk-go-v2#1825, #2737), which the SDK
		// counts as retryable; seen here about once in 50 calls under load.
		// A failing emulator still fails after the third attempt.
		RetryMaxAttempts: 3,
	}
}

// Fauxqs is a running fauxqs emulator serving SQS and S3.
type Fauxqs struct {
	Endpoint string
	Config   aws.Config
	SQS      *sqs.Client
	S3       *s3.Client
	Process  *Process
}

// StartFauxqs starts fauxqs on a free 127.0.0.1 port through the loopback
// launcher and returns clients for it.
func StartFauxqs(t T) *Fauxqs {
	t.Helper()
	p, url := startLauncher(t, "fauxqs", "fauxqs-launcher.mjs")
	t.Logf("harness: fauxqs (SQS+S3) listening on %s", url)
	cfg := AWSConfig()
	return &Fauxqs{
		Endpoint: url,
		Config:   cfg,
		Process:  p,
		SQS:      sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(url) }),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(url)
			o.UsePathStyle = true
			// Plain http cannot carry the default streaming checksums.
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}),
	}
}

// CreateQueues creates every queue of env in this fauxqs with the names and
// attributes of the CDK stack (internal/queues), dead-letter queues first.
func (f *Fauxqs) CreateQueues(t T, env string) queues.System {
	t.Helper()
	sys, err := queues.ProvisionSystem(context.Background(), f.SQS, env)
	if err != nil {
		t.Fatalf("harness: create queues: %v", err)
	}
	return sys
}

// Dynalite is a running in-memory DynamoDB emulator.
type Dynalite struct {
	Endpoint string
	Config   aws.Config
	DynamoDB *dynamodb.Client
	Process  *Process
}

// StartDynalite starts dynalite on a free 127.0.0.1 port.
func StartDynalite(t T) *Dynalite {
	t.Helper()
	p, url := startLauncher(t, "dynalite", "dynalite-launcher.cjs")
	t.Logf("harness: dynalite (DynamoDB) listening on %s", url)
	cfg := AWSConfig()
	return &Dynalite{
		Endpoint: url,
		Config:   cfg,
		Process:  p,
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(url) }),
	}
}

// Drain receives and deletes everything visible in a queue, with all
// attributes. fauxqs returns one message per FIFO group per receive, so it
// loops until a receive comes back empty (bounded).
func Drain(t T, client *sqs.Client, url string) []sqstypes.Message {
	t.Helper()
	var out []sqstypes.Message
	waited := 0
	for range 1000 {
		// A short visibility: if a receive's answer is lost on the way (and
		// the SDK retries), its messages come back in 1 s, not the queue's
		// timeout; the drain waits for them before it calls the queue empty.
		r, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}, VisibilityTimeout: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("harness: drain %s: %v", url, err)
		}
		if len(r.Messages) == 0 {
			if lostInFlight(client, url) && waited < 3 {
				waited++
				time.Sleep(1100 * time.Millisecond)
				continue
			}
			return out
		}
		for _, m := range r.Messages {
			out = append(out, m)
			if _, err := client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("harness: delete: %v", err)
			}
		}
	}
	t.Fatalf("harness: queue %s never emptied", url)
	return nil
}

// lostInFlight reports whether messages are in flight that nobody holds:
// only after a receive whose answer was lost (drains delete what they get).
func lostInFlight(client *sqs.Client, url string) bool {
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	return err == nil && out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)] != "0"
}

// QueueDepth returns visible + in flight + delayed messages of a queue, or
// -1 if the queue cannot be read.
func QueueDepth(client *sqs.Client, url string) int {
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll}})
	if err != nil {
		return -1
	}
	n := 0
	for _, k := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"} {
		var v int
		fmt.Sscan(out.Attributes[k], &v)
		n += v
	}
	return n
}
