package infra

import (
	"maps"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// PipelineStackProps configures the pipeline stack.
type PipelineStackProps struct {
	awscdk.StackProps
	Env    Environment
	Queues *Queues
}

// PipelineStack holds everything but the queues: network, cache, storage,
// secrets, functions and API, scraper service, alarms and dashboard.
type PipelineStack struct {
	awscdk.Stack
	Network     *Network
	Cache       *Cache
	Storage     *Storage
	Credentials *Credentials
	Functions   *Functions
	Scraper     *ScraperService
	Alarms      *Alarms
}

// NewPipelineStack creates the stack.
func NewPipelineStack(scope constructs.Construct, id string, props PipelineStackProps) *PipelineStack {
	stack := awscdk.NewStack(scope, &id, &props.StackProps)
	s := &PipelineStack{Stack: stack}
	s.Network = NewNetwork(stack, "Network", NetworkProps{Env: props.Env})
	s.Cache = NewCache(stack, "Cache", CacheProps{Env: props.Env, Network: s.Network})
	s.Storage = NewStorage(stack, "Storage", StorageProps{Env: props.Env})
	s.Credentials = NewCredentials(stack, "Credentials", CredentialsProps{Env: props.Env})
	s.Functions = NewFunctions(stack, "Functions", FunctionsProps{Env: props.Env, Queues: props.Queues, Storage: s.Storage, Cache: s.Cache, Network: s.Network})
	s.Scraper = NewScraperService(stack, "Scraper", ScraperServiceProps{Env: props.Env, Network: s.Network, Queues: props.Queues, Storage: s.Storage, Cache: s.Cache, Credentials: s.Credentials})
	s.Network.RestrictEndpoints(EndpointResources{
		Queues:  []*string{props.Queues.RateLimiter.QueueArn(), props.Queues.RateLimiterDLQ.QueueArn(), props.Queues.Workflows.QueueArn(), props.Queues.WorkflowsDLQ.QueueArn()},
		Secrets: []*string{s.Cache.AuthToken.SecretArn(), s.Credentials.SecretsArn},
		// The CDK bootstrap's image repository of this account and region.
		Repository: stack.FormatArn(&awscdk.ArnComponents{Service: jsii.String("ecr"), Resource: jsii.String("repository"),
			ResourceName: jsii.String("cdk-*-container-assets-" + *stack.Account() + "-" + *stack.Region())}),
		LogGroups: []*string{s.Scraper.Logs.LogGroupArn()},
		Objects:   []*string{s.Storage.Results.ArnForObjects(jsii.String("*"))},
		Tables:    []*string{s.Storage.FallbackTable.TableArn(), s.Storage.IdempotencyTable.TableArn(), s.Storage.AttemptsTable.TableArn()},
	})
	s.Alarms = NewAlarms(stack, "Alarms", AlarmsProps{Env: props.Env, Queues: props.Queues, Functions: s.Functions, Scraper: s.Scraper, Cache: s.Cache, Credentials: s.Credentials})
	newSessionHealthAlarm(stack, props.Env, s.Credentials, s.Alarms)

	awscdk.NewCfnOutput(stack, jsii.String("ApiUrl"), &awscdk.CfnOutputProps{Value: s.Functions.HTTPAPI.ApiEndpoint()})
	awscdk.NewCfnOutput(stack, jsii.String("DashboardUrl"), &awscdk.CfnOutputProps{
		Value: awscdk.Fn_Join(jsii.String(""), &[]*string{jsii.String("https://console.aws.amazon.com/cloudwatch/home?region="), stack.Region(), jsii.String("#dashboards:name="), s.Alarms.Dashboard.DashboardName()}),
	})
	awscdk.NewCfnOutput(stack, jsii.String("ResultsBucket"), &awscdk.CfnOutputProps{Value: s.Storage.Results.BucketName()})
	// What the app (or an operator) needs to create a creator's session secret.
	awscdk.NewCfnOutput(stack, jsii.String("SessionKeyArn"), &awscdk.CfnOutputProps{Value: s.Credentials.Key.KeyArn(),
		Description: jsii.String("--kms-key-id of every creator session secret " + s.Credentials.Prefix + "<creator>")})
	// What docs/runbook.md names (generated names, looked up here rather
	// than guessed).
	runbookOutputs := map[string]*string{
		"AlertTopicArn":              s.Alarms.Topic.TopicArn(),
		"ScraperClusterName":         s.Scraper.Cluster.ClusterName(),
		"ScraperServiceName":         s.Scraper.Service.ServiceName(),
		"ScraperFallbackServiceName": s.Scraper.Fallback.ServiceName(),
		"RedisReplicationGroupId":    s.Cache.ReplicationGroup.Ref(),
	}
	// In a fixed order, so that the template does not change between syntheses.
	for _, name := range slices.Sorted(maps.Keys(runbookOutputs)) {
		awscdk.NewCfnOutput(stack, jsii.String(name), &awscdk.CfnOutputProps{Value: runbookOutputs[name]})
	}
	return s
}
