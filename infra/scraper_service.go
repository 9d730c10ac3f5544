package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Scraper task size and limits (seed 003 R6.2, R6.5).
const (
	ScraperCPU            = 1024 // 1 vCPU
	ScraperMemoryMiB      = 2048 // 2 GB
	ScraperStopTimeoutSec = 120  // ECS maximum; the scraper's SHUTDOWN_DEADLINE (scraper/settings, 100 s) leaves 20 s of it to exit
	ScaleOutVisible       = 100  // seed 003 R3.2
	ScaleInVisible        = 20   // seed 003 R3.3
	ScaleInMinutes        = 5
	// FallbackAfterMinutes of Spot shortfall start On-Demand tasks;
	// FallbackReleaseMinutes of surplus stop them.
	FallbackAfterMinutes   = 3
	FallbackReleaseMinutes = 10
)

// ScraperServiceProps wires the service.
type ScraperServiceProps struct {
	Env         Environment
	Network     *Network
	Queues      *Queues
	Storage     *Storage
	Cache       *Cache
	Credentials *Credentials
}

// ScraperService is the Fargate Spot service consuming the FIFO queue.
type ScraperService struct {
	constructs.Construct
	Cluster  awsecs.Cluster
	Service  awsecs.FargateService
	TaskRole awsiam.Role
	Task     awsecs.FargateTaskDefinition
	// Fallback runs the same task On-Demand while Spot cannot place the
	// service's tasks.
	Fallback awsecs.FargateService
	Logs     awslogs.LogGroup
}

// NewScraperService creates the cluster (Container Insights), the task (1
// vCPU, 2 GB, x86_64 because Spot requires it, image built from
// scraper/Dockerfile at deploy), the service on FARGATE_SPOT with a FARGATE
// base, and queue-depth step scaling between 1 and 10 tasks.
func NewScraperService(scope constructs.Construct, id string, props ScraperServiceProps) *ScraperService {
	c := constructs.NewConstruct(scope, jsii.String(id))
	q := props.Queues
	cluster := awsecs.NewCluster(c, jsii.String("Cluster"), &awsecs.ClusterProps{
		Vpc: props.Network.Vpc, ContainerInsightsV2: awsecs.ContainerInsights_ENABLED, EnableFargateCapacityProviders: jsii.Bool(true),
	})
	taskRole := awsiam.NewRole(c, jsii.String("TaskRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("ecs-tasks.amazonaws.com"), nil), Description: jsii.String("Scraper task"),
	})
	allow(taskRole, []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}, q.Workflows.QueueArn())
	allow(taskRole, []string{"sqs:SendMessage"}, q.WorkflowsDLQ.QueueArn())
	allow(taskRole, []string{"kms:Decrypt", "kms:GenerateDataKey"}, q.WorkflowsKey.KeyArn())
	allow(taskRole, []string{"s3:PutObject"}, props.Storage.Results.ArnForObjects(jsii.String("results/*")), props.Storage.Results.ArnForObjects(jsii.String("artifacts/*")))
	allow(taskRole, []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"}, props.Storage.AttemptsTable.TableArn())
	allow(taskRole, []string{"secretsmanager:GetSecretValue"}, props.Credentials.SecretsArn, props.Cache.AuthToken.SecretArn())
	allow(taskRole, []string{"kms:Decrypt"}, props.Credentials.Key.KeyArn(), props.Cache.Key.KeyArn())
	allow(taskRole, []string{"kms:GenerateDataKey"}, props.Storage.CapturesKey.KeyArn()) // encrypt only: reading captures is for operators
	suppress(taskRole, Suppression{Rule: "AwsSolutions-IAM5", Reason: "Result objects are written under results/ and artifacts/ with per-message keys.",
		AppliesTo: []string{"regex:/^Resource::<.*Results.*\\.Arn>\\/(results|artifacts)\\/\\*$/"}},
		Suppression{Rule: "AwsSolutions-IAM5", Reason: "One secret per creator (created when the creator connects): the task reads the environment's session-secret prefix, nothing else.",
			AppliesTo: []string{sessionSecretsFinding}})

	task := awsecs.NewFargateTaskDefinition(c, jsii.String("Task"), &awsecs.FargateTaskDefinitionProps{
		Cpu: jsii.Number(ScraperCPU), MemoryLimitMiB: jsii.Number(ScraperMemoryMiB), TaskRole: taskRole,
		RuntimePlatform: &awsecs.RuntimePlatform{CpuArchitecture: awsecs.CpuArchitecture_X86_64(), OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX()},
	})
	logs := awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{Retention: retention(props.Env), RemovalPolicy: awscdk.RemovalPolicy_DESTROY})
	task.AddContainer(jsii.String("scraper"), &awsecs.ContainerDefinitionOptions{
		Image:           scraperImage(RepoRoot()),
		Logging:         awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{StreamPrefix: jsii.String("scraper"), LogGroup: logs}),
		StopTimeout:     awscdk.Duration_Seconds(jsii.Number(ScraperStopTimeoutSec)),
		LinuxParameters: awsecs.NewLinuxParameters(c, jsii.String("Linux"), &awsecs.LinuxParametersProps{InitProcessEnabled: jsii.Bool(true)}),
		Environment: func() *map[string]*string {
			s := props.Env.ScraperSettings(Resources{
				WorkflowsQueueURL: *q.Workflows.QueueUrl(), WorkflowsDLQURL: *q.WorkflowsDLQ.QueueUrl(),
				ResultsBucket: *props.Storage.Results.BucketName(), AttemptsTable: *props.Storage.AttemptsTable.TableName(), CapturesKey: *props.Storage.CapturesKey.KeyArn(),
				Redis: props.Cache.ClientSettings(), SessionSecretPrefix: props.Credentials.Prefix,
			})
			env := environment(s.Env())
			return &env
		}(),
	})
	suppress(task, Suppression{Rule: "AwsSolutions-IAM5", Reason: "The execution role's ecr:GetAuthorizationToken takes no resource ARN; AWS requires '*'.", AppliesTo: []string{"Resource::*"}})
	suppress(task, Suppression{Rule: "AwsSolutions-ECS2", Reason: "Only non-secret settings (queue URLs, bucket, secret ARNs) are environment variables; secrets are read from Secrets Manager at run time."})

	sg := awsec2.NewSecurityGroup(c, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{Vpc: props.Network.Vpc, Description: jsii.String("Scraper tasks"), AllowAllOutbound: jsii.Bool(true)})
	strategies := []*awsecs.CapacityProviderStrategy{{CapacityProvider: jsii.String("FARGATE_SPOT"), Weight: jsii.Number(1)}}
	if props.Env.ScraperOnDemandBase > 0 {
		strategies = append(strategies, &awsecs.CapacityProviderStrategy{CapacityProvider: jsii.String("FARGATE"), Base: jsii.Number(float64(props.Env.ScraperOnDemandBase)), Weight: jsii.Number(0)})
	}
	service := awsecs.NewFargateService(c, jsii.String("Service"), &awsecs.FargateServiceProps{
		Cluster: cluster, TaskDefinition: task, DesiredCount: jsii.Number(float64(props.Env.ScraperMinTasks)),
		AssignPublicIp: jsii.Bool(false), VpcSubnets: &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
		SecurityGroups: &[]awsec2.ISecurityGroup{sg, props.Cache.Clients}, CapacityProviderStrategies: &strategies,
		CircuitBreaker: &awsecs.DeploymentCircuitBreaker{Rollback: jsii.Bool(true)}, MinHealthyPercent: jsii.Number(100),
	})

	// Two step policies: scale out quickly above 100 visible messages; scale
	// in only after 5 consecutive 1-minute periods below 20 (one ScaleOnMetric
	// would share its evaluation periods between both alarms).
	scaling := service.AutoScaleTaskCount(&awsapplicationautoscaling.EnableScalingProps{
		MinCapacity: jsii.Number(float64(props.Env.ScraperMinTasks)), MaxCapacity: jsii.Number(float64(props.Env.ScraperMaxTasks)),
	})
	visible := q.Workflows.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String("Maximum")})
	scaling.ScaleOnMetric(jsii.String("ScaleOut"), &awsapplicationautoscaling.BasicStepScalingPolicyProps{
		Metric: visible, EvaluationPeriods: jsii.Number(1), AdjustmentType: awsapplicationautoscaling.AdjustmentType_CHANGE_IN_CAPACITY,
		Cooldown: awscdk.Duration_Minutes(jsii.Number(1)),
		ScalingSteps: &[]*awsapplicationautoscaling.ScalingInterval{
			{Upper: jsii.Number(ScaleOutVisible), Change: jsii.Number(0)},
			{Lower: jsii.Number(ScaleOutVisible), Change: jsii.Number(1)},
			{Lower: jsii.Number(5 * ScaleOutVisible), Change: jsii.Number(3)},
		},
	})
	scaling.ScaleOnMetric(jsii.String("ScaleIn"), &awsapplicationautoscaling.BasicStepScalingPolicyProps{
		Metric: visible, EvaluationPeriods: jsii.Number(ScaleInMinutes), DatapointsToAlarm: jsii.Number(ScaleInMinutes),
		AdjustmentType: awsapplicationautoscaling.AdjustmentType_CHANGE_IN_CAPACITY, Cooldown: awscdk.Duration_Minutes(jsii.Number(5)),
		ScalingSteps: &[]*awsapplicationautoscaling.ScalingInterval{
			{Upper: jsii.Number(ScaleInVisible), Change: jsii.Number(-1)},
			{Lower: jsii.Number(ScaleInVisible), Change: jsii.Number(0)},
		},
	})
	fallback := newOnDemandFallback(c, props, cluster, task, service, sg)
	return &ScraperService{Construct: c, Cluster: cluster, Service: service, TaskRole: taskRole, Task: task, Fallback: fallback, Logs: logs}
}

// scraperImage is the scraper's image asset, built at deploy from
// scraper/Dockerfile with root (the repository) as its context. Which files
// enter the context, and so the asset hash and the image tag, is decided by
// root's .dockerignore alone (an allow-list: go.mod, go.sum, internal/,
// scraper/, no tests), read the way Docker reads it: a docs or infra change
// must not rebuild the image nor replace the task definition.
func scraperImage(root string) awsecs.ContainerImage {
	return awsecs.ContainerImage_FromAsset(jsii.String(root), &awsecs.AssetImageProps{
		File:       jsii.String("scraper/Dockerfile"),
		Platform:   awsecrassets.Platform_LINUX_AMD64(),
		IgnoreMode: awscdk.IgnoreMode_DOCKER,
	})
}

// newOnDemandFallback is a second service running the same task on FARGATE
// (On-Demand), at 0 tasks while Spot places every task the Spot service
// wants. When Spot capacity is short (desired − running of the Spot
// service, Container Insights, less what the fallback already runs) for 3
// minutes, it adds tasks; when Spot and fallback together run more than
// the Spot service wants for 10 minutes, it removes them. Both services
// consume the same queue: the per-message claims keep them off each
// other's messages.
func newOnDemandFallback(c constructs.Construct, props ScraperServiceProps, cluster awsecs.Cluster, task awsecs.FargateTaskDefinition, spot awsecs.FargateService, sg awsec2.ISecurityGroup) awsecs.FargateService {
	fallback := awsecs.NewFargateService(c, jsii.String("OnDemandFallback"), &awsecs.FargateServiceProps{
		Cluster: cluster, TaskDefinition: task, DesiredCount: jsii.Number(0),
		AssignPublicIp: jsii.Bool(false), VpcSubnets: &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS},
		SecurityGroups:             &[]awsec2.ISecurityGroup{sg, props.Cache.Clients},
		CapacityProviderStrategies: &[]*awsecs.CapacityProviderStrategy{{CapacityProvider: jsii.String("FARGATE"), Weight: jsii.Number(1)}},
		CircuitBreaker:             &awsecs.DeploymentCircuitBreaker{Rollback: jsii.Bool(true)},
	})
	count := func(service awsecs.FargateService, name string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String("ECS/ContainerInsights"), MetricName: jsii.String(name), Statistic: jsii.String("Average"), Period: awscdk.Duration_Minutes(jsii.Number(1)),
			DimensionsMap: &map[string]*string{"ClusterName": cluster.ClusterName(), "ServiceName": service.ServiceName()},
		})
	}
	using := &map[string]awscloudwatch.IMetric{
		"desired": count(spot, "DesiredTaskCount"), "running": count(spot, "RunningTaskCount"), "fallback": count(fallback, "RunningTaskCount"),
	}
	shortfall := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("desired - running - FILL(fallback, 0)"), Label: jsii.String("Spot tasks missing, not yet covered On-Demand"),
		Period: awscdk.Duration_Minutes(jsii.Number(1)), UsingMetrics: using,
	})
	excess := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(fallback, 0) + running - desired"), Label: jsii.String("On-Demand tasks Spot no longer needs"),
		Period: awscdk.Duration_Minutes(jsii.Number(1)), UsingMetrics: using,
	})
	scaling := fallback.AutoScaleTaskCount(&awsapplicationautoscaling.EnableScalingProps{MinCapacity: jsii.Number(0), MaxCapacity: jsii.Number(float64(props.Env.ScraperMaxTasks))})
	scaling.ScaleOnMetric(jsii.String("CoverSpotShortfall"), &awsapplicationautoscaling.BasicStepScalingPolicyProps{
		Metric: shortfall, EvaluationPeriods: jsii.Number(FallbackAfterMinutes), DatapointsToAlarm: jsii.Number(FallbackAfterMinutes),
		AdjustmentType: awsapplicationautoscaling.AdjustmentType_CHANGE_IN_CAPACITY, Cooldown: awscdk.Duration_Minutes(jsii.Number(1)),
		ScalingSteps: &[]*awsapplicationautoscaling.ScalingInterval{
			{Upper: jsii.Number(1), Change: jsii.Number(0)},
			{Lower: jsii.Number(1), Change: jsii.Number(1)},
			{Lower: jsii.Number(3), Change: jsii.Number(3)},
		},
	})
	scaling.ScaleOnMetric(jsii.String("ReturnToSpot"), &awsapplicationautoscaling.BasicStepScalingPolicyProps{
		Metric: excess, EvaluationPeriods: jsii.Number(FallbackReleaseMinutes), DatapointsToAlarm: jsii.Number(FallbackReleaseMinutes),
		AdjustmentType: awsapplicationautoscaling.AdjustmentType_CHANGE_IN_CAPACITY, Cooldown: awscdk.Duration_Minutes(jsii.Number(5)),
		ScalingSteps: &[]*awsapplicationautoscaling.ScalingInterval{
			{Upper: jsii.Number(1), Change: jsii.Number(0)},
			{Lower: jsii.Number(1), Change: jsii.Number(-1)},
		},
	})
	return fallback
}
