package infra

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awschatbot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/internal/queues"
)

// AlertTopicProps configures the alerts topic.
type AlertTopicProps struct {
	Env Environment
}

// AlertTopic is where every alarm of an environment notifies, and the
// people it reaches (Environment.Alerts).
type AlertTopic struct {
	constructs.Construct
	Topic awssns.ITopic
	// Name is the topic's physical name.
	Name string
}

// AlertTopicNameOf is the alerts topic of env: prod's existing
// huntaze-cost-alerts (seed 003 R5.5), huntaze-cost-alerts-<env> elsewhere
// so that two environments in one account do not collide.
func AlertTopicNameOf(env string) string { return queues.Name(AlertTopicName, env) }

// NewAlertTopic imports the existing topic where the environment has one
// (prod), creates a KMS-encrypted one otherwise, and subscribes every
// recipient of the environment's configuration to it. An invalid
// subscription fails synthesis with the field and the reason.
func NewAlertTopic(scope constructs.Construct, id string, props AlertTopicProps) *AlertTopic {
	c := constructs.NewConstruct(scope, jsii.String(id))
	stack := awscdk.Stack_Of(c)
	name := AlertTopicNameOf(props.Env.Name)
	var topic awssns.ITopic
	if props.Env.AlertTopicExists {
		topic = awssns.Topic_FromTopicArn(c, jsii.String("Topic"), jsii.String(fmt.Sprintf("arn:%s:sns:%s:%s:%s", *stack.Partition(), *stack.Region(), *stack.Account(), name)))
	} else {
		key := awskms.NewKey(c, jsii.String("TopicKey"), &awskms.KeyProps{Description: jsii.String("Encrypts the alerts topic (" + props.Env.Name + ")"), EnableKeyRotation: jsii.Bool(true)})
		// CloudWatch must be able to publish to an encrypted topic.
		key.GrantEncryptDecrypt(awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil))
		topic = awssns.NewTopic(c, jsii.String("Topic"), &awssns.TopicProps{TopicName: jsii.String(name), MasterKey: key, EnforceSSL: jsii.Bool(true)})
	}
	for i, s := range props.Env.Alerts {
		if err := s.Validate(); err != nil {
			awscdk.Annotations_Of(c).AddError(jsii.String(fmt.Sprintf("%s: Alerts[%d]: %v (infra/config.go)", props.Env.Name, i, err)))
			continue
		}
		sid := jsii.String("Subscription" + strconv.Itoa(i))
		switch s.Kind {
		case AlertEmail:
			awssns.NewSubscription(c, sid, &awssns.SubscriptionProps{Topic: topic, Protocol: awssns.SubscriptionProtocol_EMAIL, Endpoint: jsii.String(s.Endpoint)})
		case AlertHTTPS:
			awssns.NewSubscription(c, sid, &awssns.SubscriptionProps{Topic: topic, Protocol: awssns.SubscriptionProtocol_HTTPS, Endpoint: jsii.String(s.Endpoint)})
		case AlertSlack:
			// Chatbot subscribes itself to the topics its configuration
			// lists; its role may only read CloudWatch (the guardrail caps
			// what a channel member can do through it).
			awschatbot.NewSlackChannelConfiguration(c, sid, &awschatbot.SlackChannelConfigurationProps{
				SlackChannelConfigurationName: jsii.String(fmt.Sprintf("huntaze-%s-alerts-%d", props.Env.Name, i)),
				SlackWorkspaceId:              jsii.String(s.SlackWorkspaceID),
				SlackChannelId:                jsii.String(s.SlackChannelID),
				NotificationTopics:            &[]awssns.ITopic{topic},
				GuardrailPolicies:             &[]awsiam.IManagedPolicy{awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("CloudWatchReadOnlyAccess"))},
				LoggingLevel:                  awschatbot.LoggingLevel_ERROR,
			})
		}
	}
	return &AlertTopic{Construct: c, Topic: topic, Name: name}
}
