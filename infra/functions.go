package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/queues"
)

// Lambda timeouts. The limiter queue's visibility timeout (internal/queues)
// is 6× the limiter's.
const (
	LimiterTimeoutSeconds = 30
	APITimeoutSeconds     = 15
	ReplayTimeoutSeconds  = 120
)

// FunctionsProps wires the functions to the rest of the system.
type FunctionsProps struct {
	Env     Environment
	Queues  *Queues
	Storage *Storage
	Cache   *Cache
	Network *Network
}

// Functions are the Lambdas and the HTTP API.
type Functions struct {
	constructs.Construct
	API, Limiter, Replay *GoFunction
	HTTPAPI              awsapigatewayv2.HttpApi
	FlagParameter        awsssm.StringParameter
	LimiterSecurityGroup awsec2.SecurityGroup
}

// environment turns a component's rendered settings into a function's or
// container's environment (CDK tokens pass through as strings).
func environment(env map[string]string) map[string]*string {
	out := make(map[string]*string, len(env))
	for k, v := range env {
		out[k] = jsii.String(v)
	}
	return out
}

// fallbackIndex is the ARN of the fallback table's creator index.
func fallbackIndex(st *Storage) *string {
	return jsii.String(*st.FallbackTable.TableArn() + "/index/" + fallback.CreatorIndex)
}

func allow(role awsiam.Role, actions []string, resources ...*string) {
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings(actions...), Resources: &resources,
	}))
}

// NewFunctions creates the API, rate limiter and replay Lambdas, each with
// exactly the permissions it uses, and the HTTP API with its JWT authorizer.
func NewFunctions(scope constructs.Construct, id string, props FunctionsProps) *Functions {
	c := constructs.NewConstruct(scope, jsii.String(id))
	q, st := props.Queues, props.Storage
	name := func(base string) string { return queues.Name(base, props.Env.Name) }

	flagParam := awsssm.NewStringParameter(c, jsii.String("RateLimiterEnabled"), &awsssm.StringParameterProps{
		ParameterName: jsii.String(FlagParameterName(props.Env.Name)),
		StringValue:   jsii.String("true"),
		Description:   jsii.String("RATE_LIMITER_ENABLED at runtime (seed 000 R7): false makes the rate limiter forward without the rate check, in order"),
	})
	resources := Resources{
		IntakeQueueURL: *q.RateLimiter.QueueUrl(), IntakeDLQURL: *q.RateLimiterDLQ.QueueUrl(),
		WorkflowsQueueURL: *q.Workflows.QueueUrl(), WorkflowsDLQURL: *q.WorkflowsDLQ.QueueUrl(),
		FallbackTable: *st.FallbackTable.TableName(), IdempotencyTable: *st.IdempotencyTable.TableName(),
		FlagParameter: *flagParam.ParameterName(), Redis: props.Cache.ClientSettings(),
	}
	apiEnv := props.Env.APISettings(resources).Env()
	// The API and replay send to the intake queue only (design.md section 6:
	// every path goes through the limiter, the flag only switches its rate
	// check), so neither holds the workflows queue or its key; both read the
	// depth of all four queues (backpressure, /status).
	sendToIntake := func(role awsiam.Role) {
		allow(role, []string{"sqs:SendMessage"}, q.RateLimiter.QueueArn())
		allow(role, []string{"sqs:GetQueueAttributes"}, q.RateLimiter.QueueArn(), q.RateLimiterDLQ.QueueArn(), q.Workflows.QueueArn(), q.WorkflowsDLQ.QueueArn())
	}

	apiFn := NewGoFunction(c, APIFunction, GoFunctionProps{Env: props.Env, Environment: apiEnv})
	sendToIntake(apiFn.Role)
	// /status reports the flag.
	allow(apiFn.Role, []string{"ssm:GetParameter"}, flagParam.ParameterArn())
	allow(apiFn.Role, []string{"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"},
		st.FallbackTable.TableArn(), st.IdempotencyTable.TableArn())
	// The creators' fallback backlogs, read on every send (order).
	allow(apiFn.Role, []string{"dynamodb:BatchGetItem"}, st.FallbackTable.TableArn())
	// The replay route queries each creator's items in order.
	allow(apiFn.Role, []string{"dynamodb:Query"}, fallbackIndex(st))

	replayFn := NewGoFunction(c, ReplayFunction, GoFunctionProps{Env: props.Env, Environment: props.Env.ReplaySettings(resources).Env()})
	sendToIntake(replayFn.Role)
	allow(replayFn.Role, []string{"dynamodb:Scan", "dynamodb:UpdateItem", "dynamodb:GetItem"}, st.FallbackTable.TableArn())
	allow(replayFn.Role, []string{"dynamodb:Query"}, fallbackIndex(st))
	awsevents.NewRule(c, jsii.String("ReplaySchedule"), &awsevents.RuleProps{
		Schedule: awsevents.Schedule_Rate(awscdk.Duration_Seconds(jsii.Number(ReplayEvery.Seconds()))),
		Targets:  &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(replayFn.Function, nil)},
	})

	limiterSG := awsec2.NewSecurityGroup(c, jsii.String("LimiterSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: props.Network.Vpc, Description: jsii.String("Rate limiter Lambda"), AllowAllOutbound: jsii.Bool(true),
	})
	limiterFn := NewGoFunction(c, LimiterFunction, GoFunctionProps{
		Env: props.Env, Vpc: props.Network.Vpc, SecurityGroups: []awsec2.ISecurityGroup{limiterSG, props.Cache.Clients},
		Environment: props.Env.LimiterSettings(resources).Env(),
	})
	source := &awslambdaeventsources.SqsEventSourceProps{
		BatchSize: jsii.Number(LimiterBatchSize), ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency: jsii.Number(float64(props.Env.LimiterMaxConcurrency)),
	}
	if LimiterBatchingWindow > 0 {
		source.MaxBatchingWindow = awscdk.Duration_Seconds(jsii.Number(LimiterBatchingWindow.Seconds()))
	}
	limiterFn.Function.AddEventSource(awslambdaeventsources.NewSqsEventSource(q.RateLimiter, source))
	allow(limiterFn.Role, []string{"sqs:SendMessage"}, q.Workflows.QueueArn(), q.RateLimiterDLQ.QueueArn())
	allow(limiterFn.Role, []string{"kms:GenerateDataKey", "kms:Decrypt"}, q.WorkflowsKey.KeyArn())
	allow(limiterFn.Role, []string{"secretsmanager:GetSecretValue"}, props.Cache.AuthToken.SecretArn())
	allow(limiterFn.Role, []string{"kms:Decrypt"}, props.Cache.Key.KeyArn())
	// The flag is applied by the limiter (off: forwarded without the check).
	allow(limiterFn.Role, []string{"ssm:GetParameter"}, flagParam.ParameterArn())

	// HTTP API: every route needs a JWT from the configured issuer.
	authorizer := awsapigatewayv2authorizers.NewHttpJwtAuthorizer(jsii.String("Jwt"), jsii.String(props.Env.JWTIssuer), &awsapigatewayv2authorizers.HttpJwtAuthorizerProps{
		JwtAudience: jsii.Strings(props.Env.JWTAudience),
	})
	httpAPI := awsapigatewayv2.NewHttpApi(c, jsii.String("HttpApi"), &awsapigatewayv2.HttpApiProps{
		ApiName:           jsii.String(name("huntaze-messages-api")),
		DefaultAuthorizer: authorizer,
	})
	integration := awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("Api"), apiFn.Function, nil)
	// A slice, not a map: the shared integration takes its id from the first
	// route, and a random order would change the template at every synth.
	var routes []awsapigatewayv2.HttpRoute
	for _, r := range []struct {
		path   string
		method awsapigatewayv2.HttpMethod
	}{{api.PathSend, awsapigatewayv2.HttpMethod_POST}, {api.PathStatus, awsapigatewayv2.HttpMethod_GET}, {api.PathReplay, awsapigatewayv2.HttpMethod_POST}} {
		routes = append(routes, *httpAPI.AddRoutes(&awsapigatewayv2.AddRoutesOptions{Path: jsii.String(r.path), Methods: &[]awsapigatewayv2.HttpMethod{r.method}, Integration: integration})...)
	}
	accessLogs := awslogs.NewLogGroup(c, jsii.String("ApiAccessLogs"), &awslogs.LogGroupProps{Retention: retention(props.Env), RemovalPolicy: awscdk.RemovalPolicy_DESTROY})
	stage := httpAPI.DefaultStage().Node().DefaultChild().(awsapigatewayv2.CfnStage)
	stage.SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: accessLogs.LogGroupArn(),
		Format:         jsii.String(`{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","sub":"$context.authorizer.claims.sub","routeKey":"$context.routeKey","status":"$context.status","latency":"$context.responseLatency","error":"$context.authorizer.error"}`),
	})
	throttle(stage, props.Env.API, routes)

	return &Functions{Construct: c, API: apiFn, Limiter: limiterFn, Replay: replayFn, HTTPAPI: httpAPI, FlagParameter: flagParam, LimiterSecurityGroup: limiterSG}
}
