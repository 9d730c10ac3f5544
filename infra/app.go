// Package infra is the AWS CDK app of the pipeline: one construct per concern,
// one file each, assembled into stacks per environment.
package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
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
		// The CloudFormation stacks' own tags; resources get theirs below.
		Tags: &map[string]*string{TagProject: jsii.String(ProjectName), TagEnvironment: jsii.String(env.Name)},
	}
	messaging := NewMessagingStack(app, env.StackName("Messaging"), MessagingStackProps{StackProps: props, Env: env})
	pipeline := NewPipelineStack(app, env.StackName("Pipeline"), PipelineStackProps{StackProps: props, Env: env, Queues: messaging.Queues})
	tagComponents(env, messaging, pipeline)
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return &System{Env: env, Messaging: messaging, Pipeline: pipeline}
}

// Cost-allocation tags (activate them once in the Billing console): every
// taggable resource carries project, environment and component. A
// component tag set deeper in the tree wins over the stack's default.
const (
	TagProject     = "project"
	TagEnvironment = "environment"
	TagComponent   = "component"
	ProjectName    = "huntaze-message-pipeline"
)

// UntaggedResourceTypes are taggable in aws-cdk-lib 2.270 but refused by
// cfn-lint 1.51.0's schema (E3002): a template that may fail to deploy is
// not worth a dashboard's tag.
var UntaggedResourceTypes = []string{"AWS::CloudWatch::Dashboard"}

func tagComponents(env Environment, messaging *MessagingStack, pipeline *PipelineStack) {
	tag := func(scope constructs.IConstruct, key, value string) {
		awscdk.Tags_Of(scope).Add(jsii.String(key), jsii.String(value), &awscdk.TagProps{ExcludeResourceTypes: jsii.Strings(UntaggedResourceTypes...)})
	}
	for stack, component := range map[awscdk.Stack]string{messaging.Stack: "messaging", pipeline.Stack: "pipeline"} {
		tag(stack, TagProject, ProjectName)
		tag(stack, TagEnvironment, env.Name)
		tag(stack, TagComponent, component)
	}
	f := pipeline.Functions
	for scope, component := range map[constructs.IConstruct]string{
		// (the constructs embedded in our structs: jsii knows only those)
		pipeline.Network.Construct: "network", pipeline.Cache.Construct: "cache", pipeline.Storage.Construct: "storage",
		pipeline.Credentials.Construct: "scraper", pipeline.Scraper.Construct: "scraper", pipeline.Alarms.Construct: "monitoring",
		f.Construct: "api", f.Limiter.Construct: "rate-limiter", f.LimiterSecurityGroup: "rate-limiter",
	} {
		tag(scope, TagComponent, component)
	}
}

// EnvironmentFromContext reads `-c env=NAME` from the app.
func EnvironmentFromContext(app awscdk.App) (Environment, error) {
	name, _ := app.Node().TryGetContext(jsii.String(EnvContextKey)).(string)
	return LookupEnvironment(name)
}
