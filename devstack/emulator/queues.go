package emulator

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/queues"
)

// QueueCreator is the part of the SQS client Provision needs.
type QueueCreator interface {
	CreateQueue(ctx context.Context, in *sqs.CreateQueueInput, optFns ...func(*sqs.Options)) (*sqs.CreateQueueOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

// Provisioned holds the URLs and ARNs of one created queue pair.
type Provisioned struct {
	URL, ARN       string
	DLQURL, DLQARN string
}

// Provision creates the pair in an SQS endpoint (the local emulator; in AWS
// the CDK stack owns the queues): the dead-letter queue first, then the main
// queue with its redrive policy pointing at the DLQ's ARN. CreateQueue is
// idempotent for equal attributes, so calling it twice is safe.
func Provision(ctx context.Context, client QueueCreator, p queues.Pair) (Provisioned, error) {
	dlqURL, dlqARN, err := create(ctx, client, p.DeadLetter, nil)
	if err != nil {
		return Provisioned{}, err
	}
	url, arn, err := create(ctx, client, p.Main, map[string]string{"RedrivePolicy": p.RedrivePolicy(dlqARN)})
	if err != nil {
		return Provisioned{}, err
	}
	return Provisioned{URL: url, ARN: arn, DLQURL: dlqURL, DLQARN: dlqARN}, nil
}

// System holds every queue of one environment.
type System struct {
	RateLimiter Provisioned
	Workflows   Provisioned
}

// ProvisionSystem creates every queue pair of env.
func ProvisionSystem(ctx context.Context, client QueueCreator, env string) (System, error) {
	limiter, err := Provision(ctx, client, queues.RateLimiter(env))
	if err != nil {
		return System{}, err
	}
	workflows, err := Provision(ctx, client, queues.Workflows(env))
	if err != nil {
		return System{}, err
	}
	return System{RateLimiter: limiter, Workflows: workflows}, nil
}

func create(ctx context.Context, client QueueCreator, q queues.Queue, extra map[string]string) (url, arn string, err error) {
	attrs := q.Attributes()
	for k, v := range extra {
		attrs[k] = v
	}
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(q.Name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", q.Name, err)
	}
	got, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("queue %s arn: %w", q.Name, err)
	}
	return aws.ToString(out.QueueUrl), got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}
