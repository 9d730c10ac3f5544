package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/internal/queues"
)

// QueuesProps configures the queues construct.
type QueuesProps struct {
	Env Environment
}

// Queues are the two FIFO queues of the pipeline (intake and workflows) with
// their FIFO dead-letter queues and the customer-managed key of the workflows
// pair. Names and attributes come from
// internal/queues, which the local pipeline and the tests use too.
type Queues struct {
	constructs.Construct
	RateLimiter    awssqs.Queue
	RateLimiterDLQ awssqs.Queue
	Workflows      awssqs.Queue
	WorkflowsDLQ   awssqs.Queue
	// WorkflowsKey encrypts the FIFO queue and its DLQ (seed 003, R8.3).
	WorkflowsKey awskms.Key
}

// NewQueues creates the queues. Every queue denies requests that are not made
// over TLS; production queues and the key are retained when the stack goes.
func NewQueues(scope constructs.Construct, id string, props QueuesProps) *Queues {
	c := constructs.NewConstruct(scope, jsii.String(id))
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Env.Name == queues.ProdEnvironment {
		removal = awscdk.RemovalPolicy_RETAIN
	}

	key := awskms.NewKey(c, jsii.String("WorkflowsKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the hybrid workflows FIFO queue and its DLQ (" + props.Env.Name + ")"),
		EnableKeyRotation: jsii.Bool(true),
		Alias:             jsii.String("alias/huntaze-hybrid-workflows-" + props.Env.Name),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})

	newQueue := func(id string, q queues.Queue, dlq *awssqs.DeadLetterQueue) awssqs.Queue {
		qp := &awssqs.QueueProps{
			QueueName:       jsii.String(q.Name),
			RetentionPeriod: awscdk.Duration_Seconds(jsii.Number(q.RetentionPeriod.Seconds())),
			EnforceSSL:      jsii.Bool(true),
			Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
			DeadLetterQueue: dlq,
			RemovalPolicy:   removal,
		}
		if q.VisibilityTimeout > 0 {
			qp.VisibilityTimeout = awscdk.Duration_Seconds(jsii.Number(q.VisibilityTimeout.Seconds()))
		}
		if q.FIFO {
			qp.Fifo = jsii.Bool(true)
			qp.ContentBasedDeduplication = jsii.Bool(false)
		}
		if q.HighThroughput {
			qp.DeduplicationScope = awssqs.DeduplicationScope_MESSAGE_GROUP
			qp.FifoThroughputLimit = awssqs.FifoThroughputLimit_PER_MESSAGE_GROUP_ID
		}
		if q.KMSEncrypted {
			qp.Encryption = awssqs.QueueEncryption_KMS
			qp.EncryptionMasterKey = key
		}
		return awssqs.NewQueue(c, jsii.String(id), qp)
	}

	limiter := queues.RateLimiter(props.Env.Name)
	limiterDLQ := newQueue("RateLimiterDLQ", limiter.DeadLetter, nil)
	limiterQueue := newQueue("RateLimiterQueue", limiter.Main, &awssqs.DeadLetterQueue{
		Queue: limiterDLQ, MaxReceiveCount: jsii.Number(float64(limiter.MaxReceiveCount)),
	})

	workflows := queues.Workflows(props.Env.Name)
	workflowsDLQ := newQueue("WorkflowsDLQ", workflows.DeadLetter, nil)
	workflowsQueue := newQueue("WorkflowsQueue", workflows.Main, &awssqs.DeadLetterQueue{
		Queue: workflowsDLQ, MaxReceiveCount: jsii.Number(float64(workflows.MaxReceiveCount)),
	})

	return &Queues{
		Construct:      c,
		RateLimiter:    limiterQueue,
		RateLimiterDLQ: limiterDLQ,
		Workflows:      workflowsQueue,
		WorkflowsDLQ:   workflowsDLQ,
		WorkflowsKey:   key,
	}
}
