package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// MessagingStackProps configures the messaging stack.
type MessagingStackProps struct {
	awscdk.StackProps
	Env Environment
}

// MessagingStack holds the queues of the pipeline.
type MessagingStack struct {
	awscdk.Stack
	Queues *Queues
}

// NewMessagingStack creates the stack with the queues and exports their URLs.
func NewMessagingStack(scope constructs.Construct, id string, props MessagingStackProps) *MessagingStack {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	q := NewQueues(stack, "Queues", QueuesProps{Env: props.Env})
	for name, queue := range map[string]interface{ QueueUrl() *string }{
		"RateLimiterQueueUrl": q.RateLimiter,
		"RateLimiterDlqUrl":   q.RateLimiterDLQ,
		"WorkflowsQueueUrl":   q.Workflows,
		"WorkflowsDlqUrl":     q.WorkflowsDLQ,
	} {
		awscdk.NewCfnOutput(stack, jsii.String(name), &awscdk.CfnOutputProps{Value: queue.QueueUrl()})
	}
	return &MessagingStack{Stack: stack, Queues: q}
}
