// Package infra is the AWS CDK app of the pipeline: one construct per concern,
// one file each, assembled into stacks per environment.
package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// EnvContextKey is the CDK context key that selects the environment
// (`cdk synth -c env=prod`).
const EnvContextKey = "env"

// System is every stack of one environment.
type System struct {
	Env       Environment
	Messaging *MessagingStack
	Pipeline  *PipelineStack
}

// NewSystem adds the stacks of env to app and applies the cdk-nag
// AwsSolutions checks to all of them: any finding fails synthesis.
func NewSystem(app awscdk.App, env Environment) *System {
	stackEnv := &awscdk.Environment{Region: jsii.String(env.Region)}
	if env.Account != "" {
		stackEnv.Account = jsii.String(env.Account)
		// A stack pinned to an account looks its AZs up in AWS unless the
		// context holds them: the environment names them, so synth makes no
		// AWS call.
		app.Node().SetContext(jsii.String("availability-zones:account="+env.Account+":region="+env.Region), env.AvailabilityZones)
	}
	props := awscdk.StackProps{
		Env:         stackEnv,
		Description: jsii.String("Huntaze OnlyFans message pipeline (" + env.Name + ")"),
		Tags:        &map[string]*string{"project": jsii.String("huntaze-message-pipeline"), "environment": jsii.String(env.Name)},
	}
	messaging := NewMessagingStack(app, env.StackName("Messaging"), MessagingStackProps{StackProps: props, Env: env})
	pipeline := NewPipelineStack(app, env.StackName("Pipeline"), PipelineStackProps{StackProps: props, Env: env, Queues: messaging.Queues})
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return &System{Env: env, Messaging: messaging, Pipeline: pipeline}
}

// EnvironmentFromContext reads `-c env=NAME` from the app.
func EnvironmentFromContext(app awscdk.App) (Environment, error) {
	name, _ := app.Node().TryGetContext(jsii.String(EnvContextKey)).(string)
	return LookupEnvironment(name)
}
