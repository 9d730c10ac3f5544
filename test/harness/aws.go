package harness

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

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
		// Retries would hide a failing emulator behind slow tests.
		RetryMaxAttempts: 1,
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
