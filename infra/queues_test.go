package infra

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/internal/queues"
)

func queuesTemplate(t *testing.T, envName string) assertions.Template {
	t.Helper()
	env, err := LookupEnvironment(envName)
	if err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(nil)
	stack := awscdk.NewStack(app, jsii.String("QueuesTest"), nil)
	NewQueues(stack, "Queues", QueuesProps{Env: env})
	return assertions.Template_FromStack(stack, nil)
}

func TestQueues_FourQueuesWithSeedNamesInProd(t *testing.T) {
	// GIVEN the prod environment WHEN the queues construct synthesizes
	template := queuesTemplate(t, "prod")
	// THEN there are exactly the two queues of the seeds and their DLQs
	template.ResourceCountIs(jsii.String("AWS::SQS::Queue"), jsii.Number(4))
	for _, name := range []string{"huntaze-rate-limiter-queue.fifo", "huntaze-rate-limiter-dlq.fifo", "huntaze-hybrid-workflows.fifo", "huntaze-hybrid-workflows-dlq.fifo"} {
		template.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{"QueueName": name})
	}
}

func TestQueues_IntakeIsHighThroughputFIFOAndRedrivesToItsFIFODLQOnlyAsABackstop(t *testing.T) {
	// GIVEN the dev queues WHEN synthesized THEN the intake queue is FIFO
	// (order per creator, design.md §1), deduplicates by explicit id per
	// group, throttles per group, and its redrive backstop is SQS's maximum
	// (outages never dead-letter, design.md §2)
	template := queuesTemplate(t, "dev")
	spec := queues.RateLimiter("dev")
	if spec.MaxReceiveCount != 1000 || queues.Workflows("dev").MaxReceiveCount != 1000 {
		t.Fatalf("maxReceiveCount %d / %d, want 1000", spec.MaxReceiveCount, queues.Workflows("dev").MaxReceiveCount)
	}
	template.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{
		"QueueName": spec.DeadLetter.Name, "FifoQueue": true, "SqsManagedSseEnabled": true,
	})
	template.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{
		"QueueName":                 spec.Main.Name,
		"FifoQueue":                 true,
		"ContentBasedDeduplication": false,
		"DeduplicationScope":        "messageGroup",
		"FifoThroughputLimit":       "perMessageGroupId",
		"VisibilityTimeout":         spec.Main.VisibilityTimeout.Seconds(),
		"MessageRetentionPeriod":    spec.Main.RetentionPeriod.Seconds(),
		"SqsManagedSseEnabled":      true,
		"RedrivePolicy": map[string]any{
			"deadLetterTargetArn": map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("QueuesRateLimiterDLQ.*")), "Arn"}},
			"maxReceiveCount":     spec.MaxReceiveCount,
		},
	})
}

func TestQueues_FIFOPairEncryptedWithRotatingCMK(t *testing.T) {
	// seed 003 R8.3: the FIFO queue uses KMS with automatic key rotation.
	template := queuesTemplate(t, "dev")
	template.ResourceCountIs(jsii.String("AWS::KMS::Key"), jsii.Number(1))
	template.HasResourceProperties(jsii.String("AWS::KMS::Key"), map[string]any{"EnableKeyRotation": true})
	keyArn := map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("QueuesWorkflowsKey.*")), "Arn"}}
	spec := queues.Workflows("dev")
	for _, q := range []queues.Queue{spec.Main, spec.DeadLetter} {
		template.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{
			"QueueName":                 q.Name,
			"FifoQueue":                 true,
			"ContentBasedDeduplication": false,
			"KmsMasterKeyId":            keyArn,
		})
	}
	template.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{
		"QueueName":         spec.Main.Name,
		"VisibilityTimeout": spec.Main.VisibilityTimeout.Seconds(),
		"RedrivePolicy": map[string]any{
			"deadLetterTargetArn": map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("QueuesWorkflowsDLQ.*")), "Arn"}},
			"maxReceiveCount":     spec.MaxReceiveCount,
		},
	})
}

func TestQueues_EveryQueueDeniesRequestsWithoutTLS(t *testing.T) {
	template := queuesTemplate(t, "dev")
	policies := template.FindResources(jsii.String("AWS::SQS::QueuePolicy"), map[string]any{
		"Properties": map[string]any{"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{
			assertions.Match_ObjectLike(&map[string]any{
				"Effect":    "Deny",
				"Action":    "sqs:*",
				"Principal": map[string]any{"AWS": "*"},
				"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
			}),
		})}},
	})
	if got := len(*policies); got != 4 {
		t.Fatalf("%d queue policies deny non-TLS requests, want 4", got)
	}
}

func TestQueues_ProdRetainsQueuesAndKey(t *testing.T) {
	template := queuesTemplate(t, "prod")
	retained := template.FindResources(jsii.String("AWS::SQS::Queue"), map[string]any{"DeletionPolicy": "Retain"})
	if got := len(*retained); got != 4 {
		t.Fatalf("%d prod queues retained, want 4", got)
	}
	template.HasResource(jsii.String("AWS::KMS::Key"), map[string]any{"DeletionPolicy": "Retain"})
}
