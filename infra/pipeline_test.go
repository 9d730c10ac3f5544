package infra

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/infra/iampolicy"
	"github.com/huntaze/message-pipeline/internal/queues"
)

// synthesized caches one synthesis per environment: bundling is skipped
// (aws:cdk:bundling-stacks = []), so no Go build runs in tests.
var (
	synthMu sync.Mutex
	synthed = map[string]*System{}
)

func system(t *testing.T, name string) *System {
	t.Helper()
	synthMu.Lock()
	defer synthMu.Unlock()
	if s, ok := synthed[name]; ok {
		return s
	}
	env, err := LookupEnvironment(name)
	if err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"aws:cdk:bundling-stacks": &[]*string{}}})
	s := NewSystem(app, env)
	synthed[name] = s
	return s
}

// resources returns the template's resources of one type, by logical id.
func resources(t *testing.T, stack awscdk.Stack, typ string) map[string]map[string]any {
	t.Helper()
	raw := assertions.Template_FromStack(stack, nil).ToJSON()
	b, _ := json.Marshal(raw)
	var tpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for id, r := range tpl.Resources {
		if r.Type == typ {
			out[id] = r.Properties
		}
	}
	return out
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }

func only(t *testing.T, m map[string]map[string]any, what string) map[string]any {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("want one %s, got %d", what, len(m))
	}
	for _, v := range m {
		return v
	}
	return nil
}

func TestEveryEnvironmentSynthesizesThePipelineWithoutNagFindings(t *testing.T) {
	for _, name := range EnvironmentNames() {
		t.Run(name, func(t *testing.T) {
			sys := system(t, name)
			for _, stack := range []awscdk.Stack{sys.Messaging.Stack, sys.Pipeline.Stack} {
				ann := assertions.Annotations_FromStack(stack)
				nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*|CdkNagValidationFailure.*"))
				if e := ann.FindError(jsii.String("*"), nag); len(*e) > 0 {
					t.Errorf("%s: cdk-nag errors: %s", *stack.StackName(), describe(e))
				}
				if w := ann.FindWarning(jsii.String("*"), nag); len(*w) > 0 {
					t.Errorf("%s: cdk-nag warnings: %s", *stack.StackName(), describe(w))
				}
			}
			assertions.Template_FromStack(sys.Messaging.Stack, nil).ResourceCountIs(jsii.String("AWS::SQS::Queue"), jsii.Number(4))
			if got := *sys.Pipeline.StackName(); got != "Huntaze-"+name+"-Pipeline" {
				t.Errorf("stack name %s", got)
			}
		})
	}
}

func TestSeed003R8_4_VPCEndpointsForSQSS3SecretsManagerAndFlowLogs(t *testing.T) {
	st := system(t, "dev").Pipeline.Stack
	var services []string
	for _, ep := range resources(t, st, "AWS::EC2::VPCEndpoint") {
		s := js(ep["ServiceName"])
		for _, svc := range []string{"sqs", "secretsmanager", "ecr.dkr", "ecr.api", "logs", "s3", "dynamodb"} {
			if strings.Contains(s, "."+svc+`"`) || strings.Contains(s, "."+svc+"\"]") || strings.HasSuffix(strings.Trim(s, `"`), "."+svc) {
				services = append(services, svc+":"+fmt.Sprint(ep["VpcEndpointType"]))
			}
		}
	}
	sort.Strings(services)
	want := []string{"dynamodb:Gateway", "ecr.api:Interface", "ecr.dkr:Interface", "logs:Interface", "s3:Gateway", "secretsmanager:Interface", "sqs:Interface"}
	if js(services) != js(want) {
		t.Errorf("endpoints %v, want %v", services, want)
	}
	if fl := resources(t, st, "AWS::EC2::FlowLog"); len(fl) != 1 || only(t, fl, "flow log")["TrafficType"] != "ALL" {
		t.Errorf("flow logs %v", fl)
	}
}

func TestCache_EncryptedAuthNonDefaultPortMultiAZInProd(t *testing.T) {
	for env, multiAZ := range map[string]bool{"dev": false, "prod": true} {
		rg := only(t, resources(t, system(t, env).Pipeline.Stack, "AWS::ElastiCache::ReplicationGroup"), "replication group")
		if rg["TransitEncryptionEnabled"] != true || rg["AtRestEncryptionEnabled"] != true || rg["Port"] != float64(CachePort) ||
			rg["MultiAZEnabled"] != multiAZ || rg["AutomaticFailoverEnabled"] != multiAZ || !strings.Contains(js(rg["AuthToken"]), "resolve:secretsmanager") {
			t.Errorf("%s replication group %v", env, rg)
		}
	}
	// only the clients' security group reaches the cache port
	ingress := resources(t, system(t, "dev").Pipeline.Stack, "AWS::EC2::SecurityGroupIngress")
	n := 0
	for _, in := range ingress {
		if in["FromPort"] == float64(CachePort) {
			n++
			if !strings.Contains(js(in["SourceSecurityGroupId"]), "CacheClients") {
				t.Errorf("cache ingress from %v", in["SourceSecurityGroupId"])
			}
		}
	}
	if n != 1 {
		t.Errorf("%d ingress rules on the cache port", n)
	}
}

func TestQueueVisibilityFitsTheConsumers(t *testing.T) {
	if v := queues.RateLimiter("dev").Main.VisibilityTimeout.Seconds(); v < 6*LimiterTimeoutSeconds {
		t.Errorf("limiter queue visibility %vs < 6 × %ds", v, LimiterTimeoutSeconds)
	}
	// scraper: 3 attempts × 30 s response timeout + navigation and typing,
	// well under the FIFO visibility
	if v := queues.Workflows("dev").Main.VisibilityTimeout.Seconds(); v < 3*(30+30+10) {
		t.Errorf("workflows visibility %vs below the scraper's longest processing", v)
	}
}

func TestFunctions_Seed003R1_ArmProvidedAL2023EventSourceAndJWTAPI(t *testing.T) {
	st := system(t, "dev").Pipeline.Stack
	fns := resources(t, st, "AWS::Lambda::Function")
	for id := range fns {
		if strings.HasPrefix(id, "Custom") { // CDK's own custom resource providers
			delete(fns, id)
		}
	}
	if len(fns) != 5 {
		t.Errorf("%d functions, want api, limiter, replay and two rotations", len(fns))
	}
	for id, f := range fns {
		if f["Runtime"] != "provided.al2023" || js(f["Architectures"]) != `["arm64"]` || js(f["TracingConfig"]) != `{"Mode":"Active"}` {
			t.Errorf("%s: runtime %v arch %v tracing %v", id, f["Runtime"], f["Architectures"], f["TracingConfig"])
		}
	}
	esm := only(t, resources(t, st, "AWS::Lambda::EventSourceMapping"), "event source mapping")
	if esm["BatchSize"] != 10.0 || js(esm["FunctionResponseTypes"]) != `["ReportBatchItemFailures"]` || js(esm["ScalingConfig"]) != `{"MaximumConcurrency":10}` {
		t.Errorf("event source %v", esm)
	}
	auth := only(t, resources(t, st, "AWS::ApiGatewayV2::Authorizer"), "authorizer")
	if auth["AuthorizerType"] != "JWT" || js(auth["JwtConfiguration"]) != `{"Audience":["huntaze-api-dev"],"Issuer":"https://auth.dev.huntaze.com/"}` {
		t.Errorf("authorizer %v", auth)
	}
	var routes []string
	for _, r := range resources(t, st, "AWS::ApiGatewayV2::Route") {
		if r["AuthorizationType"] != "JWT" {
			t.Errorf("route %v without JWT", r["RouteKey"])
		}
		routes = append(routes, r["RouteKey"].(string))
	}
	sort.Strings(routes)
	if js(routes) != `["GET /api/onlyfans/messages/status","POST /api/onlyfans/messages/replay","POST /api/onlyfans/messages/send"]` {
		t.Errorf("routes %v", routes)
	}
	stage := only(t, resources(t, st, "AWS::ApiGatewayV2::Stage"), "stage")
	if stage["AccessLogSettings"] == nil {
		t.Error("HTTP API stage without access logs")
	}
	schedules := map[string]bool{}
	for _, r := range resources(t, st, "AWS::Events::Rule") {
		schedules[fmt.Sprint(r["ScheduleExpression"])+" → "+js(r["Targets"])] = true
	}
	replay := false
	for s := range schedules {
		replay = replay || (strings.HasPrefix(s, "rate(5 minutes) → ") && strings.Contains(s, "FunctionsReplay"))
	}
	if !replay || len(schedules) != 3 { // replay, Redis token enforce, session health
		t.Errorf("schedules %v", schedules)
	}
	for _, lg := range resources(t, st, "AWS::Logs::LogGroup") {
		if lg["RetentionInDays"] == nil {
			t.Errorf("log group without retention: %v", lg)
		}
	}
}

func TestScraper_Seed003R3_R6_FargateSpotTaskAndTwoScalingPolicies(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		st := system(t, env).Pipeline.Stack
		cluster := only(t, resources(t, st, "AWS::ECS::Cluster"), "cluster")
		if !strings.Contains(js(cluster["ClusterSettings"]), `"containerInsights","Value":"enabled"`) {
			t.Errorf("container insights: %v", cluster["ClusterSettings"])
		}
		task := only(t, resources(t, st, "AWS::ECS::TaskDefinition"), "task")
		c := task["ContainerDefinitions"].([]any)[0].(map[string]any)
		if task["Cpu"] != "1024" || task["Memory"] != "2048" || js(task["RuntimePlatform"]) != `{"CpuArchitecture":"X86_64","OperatingSystemFamily":"LINUX"}` ||
			c["StopTimeout"] != 120.0 || c["LinuxParameters"].(map[string]any)["InitProcessEnabled"] != true {
			t.Errorf("%s task %v / container %v", env, task, c)
		}
		services := resources(t, st, "AWS::ECS::Service")
		if len(services) != 2 {
			t.Fatalf("%s: %d services, want the Spot service and its On-Demand fallback", env, len(services))
		}
		var svc map[string]any
		for id, s := range services {
			if strings.HasPrefix(id, "ScraperService") && strings.Contains(js(s["CapacityProviderStrategy"]), "FARGATE_SPOT") {
				svc = s
			}
		}
		strategy := js(svc["CapacityProviderStrategy"])
		wantBase := env == "prod"
		if !strings.Contains(strategy, `"CapacityProvider":"FARGATE_SPOT"`) || strings.Contains(strategy, `"Base":1,"CapacityProvider":"FARGATE"`) != wantBase ||
			!strings.Contains(js(svc["NetworkConfiguration"]), `"AssignPublicIp":"DISABLED"`) {
			t.Errorf("%s service strategy %s network %s", env, strategy, js(svc["NetworkConfiguration"]))
		}
		bounds := map[string]bool{}
		for _, target := range resources(t, st, "AWS::ApplicationAutoScaling::ScalableTarget") {
			bounds[fmt.Sprint(target["MinCapacity"], "..", target["MaxCapacity"])] = true
		}
		if !bounds["1..10"] || !bounds["0..10"] || len(bounds) != 2 {
			t.Errorf("scaling bounds %v, want 1..10 (Spot) and 0..10 (fallback)", bounds)
		}
		if n := len(resources(t, st, "AWS::ApplicationAutoScaling::ScalingPolicy")); n != 4 {
			t.Errorf("%d scaling policies, want 2 per service", n)
		}
		var out, in bool
		for _, a := range resources(t, st, "AWS::CloudWatch::Alarm") {
			if a["MetricName"] != "ApproximateNumberOfMessagesVisible" || a["Period"] != 60.0 {
				continue
			}
			switch {
			case a["Threshold"] == float64(ScaleOutVisible) && a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" && a["EvaluationPeriods"] == 1.0:
				out = true
			case a["Threshold"] == float64(ScaleInVisible) && a["ComparisonOperator"] == "LessThanOrEqualToThreshold" && a["EvaluationPeriods"] == 5.0 && a["DatapointsToAlarm"] == 5.0:
				in = true
			}
		}
		if !out || !in {
			t.Errorf("%s: scale-out alarm %t, scale-in alarm (5 × 1 min) %t", env, out, in)
		}
	}
}

func TestAlarms_Seed003R5_ToHuntazeCostAlerts(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		st := system(t, env).Pipeline.Stack
		topics := resources(t, st, "AWS::SNS::Topic")
		if env == "prod" && len(topics) != 0 || env == "dev" && (len(topics) != 1 || only(t, topics, "topic")["TopicName"] != AlertTopicNameOf(env)) { // huntaze-cost-alerts-dev (issue 26)
			t.Errorf("%s topics %v", env, topics)
		}
		found := map[string]bool{}
		for _, a := range resources(t, st, "AWS::CloudWatch::Alarm") {
			name := fmt.Sprint(a["AlarmName"])
			if !strings.HasPrefix(name, "huntaze-"+env+"-") {
				continue // scaling alarms
			}
			if !strings.Contains(js(a["AlarmActions"]), "Topic") && !strings.Contains(js(a["AlarmActions"]), AlertTopicName) {
				t.Errorf("%s notifies %v", name, a["AlarmActions"])
			}
			key := fmt.Sprintf("%v %v %v×%v", a["MetricName"], a["Threshold"], a["Period"], a["EvaluationPeriods"])
			found[key] = true
		}
		for _, want := range []string{
			"ApproximateAgeOfOldestMessage 600 60×1", "ApproximateNumberOfMessagesVisible 500 60×1", "Errors 10 300×1",
			"CPUUtilization 70 300×2", "ApproximateNumberOfMessagesVisible 0 60×1",
		} {
			if !found[want] {
				t.Errorf("%s: no alarm %q (have %v)", env, want, found)
			}
		}
	}
	if n := len(resources(t, system(t, "dev").Pipeline.Stack, "AWS::CloudWatch::Dashboard")); n != 1 {
		t.Errorf("%d dashboards", n)
	}
}

func TestOneSessionSecretPerCreatorReadOnlyByThePrefixTheTaskIsGiven(t *testing.T) {
	// GIVEN the dev pipeline
	sys := system(t, "dev")
	tmpl := assertions.Template_FromStack(sys.Pipeline.Stack, nil)
	// THEN the scraper looks sessions up under the environment's prefix
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
		"ContainerDefinitions": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"Environment": assertions.Match_ArrayWith(&[]any{map[string]any{"Name": "SESSION_SECRET_PREFIX", "Value": "huntaze/dev/onlyfans-session/"}}),
		})}),
	})
	// AND nothing rotates session secrets (a rotation cannot mint one):
	// only the Redis token's rotation function may be invoked by Secrets
	// Manager, and no output offers a session rotation function
	perms := resources(t, sys.Pipeline.Stack, "AWS::Lambda::Permission")
	for id, p := range perms {
		if p["Principal"] == "secretsmanager.amazonaws.com" && !strings.Contains(js(p["FunctionName"]), "CacheTokenRotation") {
			t.Errorf("%s lets Secrets Manager invoke %v", id, p["FunctionName"])
		}
	}
	tmpl.HasOutput(jsii.String("SessionKeyArn"), map[string]any{})
	if outs := tmpl.FindOutputs(jsii.String("SessionRotationArn"), map[string]any{}); len(*outs) != 0 {
		t.Error("the stack still offers a session rotation function")
	}
	// AND a schedule checks every session's health
	tmpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
		"ScheduleExpression": fmt.Sprintf("rate(%d hours)", SessionHealthEveryHours),
		"Targets":            assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{"Arn": map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("CredentialsSessionHealth.*")), "Arn"}}})}),
	})
}

func TestSeed003R8_5_SecretsWithCMKAnd90DayRotation(t *testing.T) {
	// The Redis token is the stack's one secret; each creator's session
	// secret is made when the creator connects (docs/scraper.md).
	st := system(t, "dev").Pipeline.Stack
	secrets := resources(t, st, "AWS::SecretsManager::Secret")
	rotations := resources(t, st, "AWS::SecretsManager::RotationSchedule")
	if len(secrets) != 1 || len(rotations) != 1 {
		t.Fatalf("%d secrets, %d rotations", len(secrets), len(rotations))
	}
	for id, s := range secrets {
		if s["KmsKeyId"] == nil {
			t.Errorf("%s without a customer-managed key", id)
		}
	}
	for _, r := range rotations {
		if js(r["RotationRules"]) != `{"ScheduleExpression":"rate(90 days)"}` || r["RotationLambdaARN"] == nil {
			t.Errorf("rotation %v", r)
		}
	}
	// AND the step that drops the old token (SET) runs on a schedule with
	// the Redis secret
	enforce := 0
	for _, r := range resources(t, st, "AWS::Events::Rule") {
		in := js(r["Targets"])
		if strings.Contains(in, "enforceSecret") {
			enforce++
			if r["ScheduleExpression"] != fmt.Sprintf("rate(%d minutes)", EnforceEveryMinutes) || !strings.Contains(in, "CacheAuthToken") || !strings.Contains(in, "CacheTokenRotationFunction") {
				t.Errorf("enforce schedule %v", r)
			}
		}
	}
	if enforce != 1 {
		t.Errorf("%d enforce schedules, want 1", enforce)
	}
}

func TestCapturesKeptSevenDaysUnderTheirOwnKeyTheTaskOnlyEncryptsWith(t *testing.T) {
	// GIVEN the dev pipeline
	st := system(t, "dev").Pipeline.Stack
	tmpl := assertions.Template_FromStack(st, nil)
	// THEN captures expire after 7 days
	tmpl.HasResourceProperties(jsii.String("AWS::S3::Bucket"), map[string]any{
		"LifecycleConfiguration": map[string]any{"Rules": assertions.Match_ArrayWith(&[]any{
			assertions.Match_ObjectLike(&map[string]any{"Id": "failure-artifacts", "Prefix": "artifacts/", "ExpirationInDays": 7}),
		})},
	})
	// AND the bucket refuses a capture under any other key
	policy := ""
	for _, p := range resources(t, st, "AWS::S3::BucketPolicy") {
		policy += js(p)
	}
	if !strings.Contains(policy, `"Sid":"CapturesUnderTheirKeyOnly"`) || !strings.Contains(policy, `"s3:x-amz-server-side-encryption-aws-kms-key-id":{"Fn::GetAtt":["StorageCapturesKey`) {
		t.Fatalf("no deny of captures under other keys: %s", policy)
	}
	// AND the scraper is told the key (its grants: GenerateDataKey only,
	// TestSeed003R8_1_R8_2_LeastPrivilegeExactly)
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
		"ContainerDefinitions": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"Environment": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{"Name": "CAPTURES_KMS_KEY_ID"})}),
		})}),
	})
}

func TestCapturesAreDecryptedByTheNamedOperatorsRoleOnly(t *testing.T) {
	// GIVEN the dev pipeline
	st := system(t, "dev").Pipeline.Stack
	tmpl := assertions.Template_FromStack(st, nil)
	// THEN the operators' role exists under its documented name
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Role"), map[string]any{"RoleName": CapturesReadersRole("dev")})
	// AND the captures key keeps its administration statement and denies
	// kms:Decrypt to every principal but that role
	var keyPolicy string
	for _, k := range resources(t, st, "AWS::KMS::Key") {
		if strings.Contains(js(k), "failure captures") {
			keyPolicy = js(k["KeyPolicy"])
		}
	}
	if !strings.Contains(keyPolicy, `"Action":"kms:*"`) {
		t.Errorf("the key lost its administration statement: %s", keyPolicy)
	}
	if !strings.Contains(keyPolicy, `"Sid":"DecryptByCapturesReadersOnly"`) || !strings.Contains(keyPolicy, `"Effect":"Deny"`) ||
		!strings.Contains(keyPolicy, `"ArnNotEquals":{"aws:PrincipalArn":{"Fn::GetAtt":["StorageCapturesReaders`) {
		t.Errorf("no deny of kms:Decrypt to others: %s", keyPolicy)
	}
	// AND the scraper task may not decrypt them (TestSeed003R8_1_R8_2_LeastPrivilegeExactly
	// lists its grants: GenerateDataKey only on the captures key)
}

func TestResultsBucket_EncryptedTLSOnlyPrivateWithLifecycle(t *testing.T) {
	st := system(t, "dev").Pipeline.Stack
	var results map[string]any
	for id, b := range resources(t, st, "AWS::S3::Bucket") {
		if strings.HasPrefix(id, "StorageResults") {
			results = b
		}
	}
	if results == nil || results["BucketEncryption"] == nil || js(results["PublicAccessBlockConfiguration"]) != `{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPublicBuckets":true}` ||
		!strings.Contains(js(results["LifecycleConfiguration"]), `"Prefix":"artifacts/"`) || results["LoggingConfiguration"] == nil {
		t.Fatalf("results bucket %v", results)
	}
	tls := false
	for _, p := range resources(t, st, "AWS::S3::BucketPolicy") {
		if strings.Contains(js(p), `"aws:SecureTransport":"false"`) && strings.Contains(js(p["Bucket"]), "StorageResults") {
			tls = true
		}
	}
	if !tls {
		t.Error("results bucket does not deny plain HTTP")
	}
}

func TestSeed003R8_1_R8_2_LeastPrivilegeExactly(t *testing.T) {
	// GIVEN every role of the dev pipeline, with every policy it gets
	// (inline, attached, AWS managed: iampolicy)
	st := system(t, "dev").Pipeline.Stack
	want := []struct {
		role   string
		grants []string
	}{
		{"CacheTokenRotationRole", []string{
			"ec2:AssignPrivateIpAddresses → *", "ec2:CreateNetworkInterface → *", "ec2:DeleteNetworkInterface → *", "ec2:DescribeNetworkInterfaces → *", "ec2:DescribeSubnets → *", "ec2:UnassignPrivateIpAddresses → *", "elasticache:DescribeReplicationGroups → cache-group", "elasticache:ModifyReplicationGroup → cache-group", "logs:CreateLogGroup → *", "logs:CreateLogStream → *", "logs:CreateLogStream → own-logs", "logs:PutLogEvents → *", "logs:PutLogEvents → own-logs", "secretsmanager:DescribeSecret → redis-secret", "secretsmanager:GetRandomPassword → *", "secretsmanager:GetSecretValue → redis-secret", "secretsmanager:PutSecretValue → redis-secret", "secretsmanager:UpdateSecretVersionStage → redis-secret", "xray:PutTelemetryRecords → *", "xray:PutTraceSegments → *",
		}},
		{"CredentialsSessionHealthRole", []string{ // reads sessions, never writes them
			"kms:Decrypt → credentials-key", "logs:CreateLogStream → own-logs", "logs:PutLogEvents → own-logs", "secretsmanager:GetSecretValue → session-secrets", "secretsmanager:ListSecrets → *", "xray:PutTelemetryRecords → *", "xray:PutTraceSegments → *",
		}},
		{"CustomS3AutoDeleteObjectsCustomResourceProviderRole", []string{
			"logs:CreateLogGroup → *", "logs:CreateLogStream → *", "logs:PutLogEvents → *",
		}},
		{"FunctionsApiRole", []string{
			"dynamodb:BatchGetItem → fallback-table", "dynamodb:DeleteItem → fallback-table", "dynamodb:DeleteItem → idempotency-table", "dynamodb:GetItem → fallback-table", "dynamodb:GetItem → idempotency-table", "dynamodb:PutItem → fallback-table", "dynamodb:PutItem → idempotency-table", "dynamodb:Query → fallback-table", "dynamodb:Scan → fallback-table", "dynamodb:Scan → idempotency-table", "dynamodb:UpdateItem → fallback-table", "dynamodb:UpdateItem → idempotency-table", "logs:CreateLogStream → own-logs", "logs:PutLogEvents → own-logs", "sqs:GetQueueAttributes → limiter-dlq", "sqs:GetQueueAttributes → limiter-queue", "sqs:GetQueueAttributes → workflows-dlq", "sqs:GetQueueAttributes → workflows-queue", "sqs:SendMessage → limiter-queue", "ssm:GetParameter → flag-parameter", "xray:PutTelemetryRecords → *", "xray:PutTraceSegments → *",
		}},
		{"FunctionsRateLimiterRole", []string{
			"ec2:AssignPrivateIpAddresses → *", "ec2:CreateNetworkInterface → *", "ec2:DeleteNetworkInterface → *", "ec2:DescribeNetworkInterfaces → *", "ec2:DescribeSubnets → *", "ec2:UnassignPrivateIpAddresses → *", "kms:Decrypt → cache-key", "kms:Decrypt → workflows-key", "kms:GenerateDataKey → workflows-key", "logs:CreateLogGroup → *", "logs:CreateLogStream → *", "logs:CreateLogStream → own-logs", "logs:PutLogEvents → *", "logs:PutLogEvents → own-logs", "secretsmanager:GetSecretValue → redis-secret", "sqs:ChangeMessageVisibility → limiter-queue", "sqs:DeleteMessage → limiter-queue", "sqs:GetQueueAttributes → limiter-queue", "sqs:GetQueueUrl → limiter-queue", "sqs:ReceiveMessage → limiter-queue", "sqs:SendMessage → limiter-dlq", "sqs:SendMessage → workflows-queue", "ssm:GetParameter → flag-parameter", "xray:PutTelemetryRecords → *", "xray:PutTraceSegments → *",
		}},
		{"FunctionsReplayRole", []string{
			"dynamodb:GetItem → fallback-table", "dynamodb:Query → fallback-table", "dynamodb:Scan → fallback-table", "dynamodb:UpdateItem → fallback-table", "logs:CreateLogStream → own-logs", "logs:PutLogEvents → own-logs", "sqs:GetQueueAttributes → limiter-dlq", "sqs:GetQueueAttributes → limiter-queue", "sqs:GetQueueAttributes → workflows-dlq", "sqs:GetQueueAttributes → workflows-queue", "sqs:SendMessage → limiter-queue", "xray:PutTelemetryRecords → *", "xray:PutTraceSegments → *",
		}},
		{"NetworkVpcFlowLogIAMRole", []string{
			"logs:CreateLogStream → own-logs", "logs:DescribeLogStreams → own-logs", "logs:PutLogEvents → own-logs",
		}},
		{"ScraperTaskExecutionRole", []string{
			"ecr:BatchCheckLayerAvailability → cdk-image-repository", "ecr:BatchGetImage → cdk-image-repository", "ecr:GetAuthorizationToken → *", "ecr:GetDownloadUrlForLayer → cdk-image-repository", "logs:CreateLogStream → own-logs", "logs:PutLogEvents → own-logs",
		}},
		{"ScraperTaskRole", []string{
			"dynamodb:DeleteItem → attempts-table", "dynamodb:GetItem → attempts-table", "dynamodb:PutItem → attempts-table", "dynamodb:UpdateItem → attempts-table",
			"kms:Decrypt → cache-key", "kms:Decrypt → credentials-key", "kms:Decrypt → workflows-key", "kms:GenerateDataKey → captures-key", "kms:GenerateDataKey → workflows-key", "s3:PutObject → artifacts/*", "s3:PutObject → results/*", "secretsmanager:GetSecretValue → redis-secret", "secretsmanager:GetSecretValue → session-secrets", "sqs:ChangeMessageVisibility → workflows-queue", "sqs:DeleteMessage → workflows-queue", "sqs:ReceiveMessage → workflows-queue", "sqs:SendMessage → workflows-dlq",
		}},
		{"StorageCapturesReaders", []string{"kms:Decrypt → captures-key", "s3:GetObject → artifacts/*"}},
	}
	tpl, err := iampolicy.Parse(assertions.Template_FromStack(st, nil).ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	// THEN each role has exactly the listed permissions
	covered := map[string]bool{}
	for _, tc := range want {
		t.Run(tc.role, func(t *testing.T) {
			id, err := tpl.RoleID(tc.role)
			if err != nil {
				t.Fatal(err)
			}
			covered[id] = true
			if got := tpl.Grants(id); js(got) != js(tc.grants) {
				t.Errorf("grants differ\n got: %v\nwant: %v", got, tc.grants)
			}
		})
	}
	// AND no role escapes the list
	for id, r := range tpl.Resources {
		if r.Type == "AWS::IAM::Role" && !covered[id] {
			t.Errorf("role %s is not in this test: list what it may do", id)
		}
	}
}

func TestSynthesisIsDeterministic(t *testing.T) {
	// GIVEN the same environment synthesized twice
	env, _ := LookupEnvironment("dev")
	tpl := func() string {
		app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"aws:cdk:bundling-stacks": &[]*string{}}})
		return js(assertions.Template_FromStack(NewSystem(app, env).Pipeline.Stack, nil).ToJSON())
	}
	// THEN the templates are identical (so `make diff` shows only real changes)
	if a, b := tpl(), tpl(); a != b {
		t.Fatal("two syntheses of dev differ")
	}
}

func TestFunctions_EveryVPCFunctionsRoleMayManageItsNetworkInterfaces(t *testing.T) {
	// GIVEN every environment's pipeline stack
	for _, env := range []string{"dev", "staging", "prod"} {
		st := system(t, env).Pipeline.Stack
		roles := resources(t, st, "AWS::IAM::Role")
		vpcFns := 0
		// WHEN a function runs in a VPC
		for id, f := range resources(t, st, "AWS::Lambda::Function") {
			if f["VpcConfig"] == nil {
				continue
			}
			vpcFns++
			roleRef, _ := f["Role"].(map[string]any)["Fn::GetAtt"].([]any)
			role := roles[roleRef[0].(string)]
			// THEN its role carries the ENI actions Lambda needs to create it
			if !strings.Contains(js(role["ManagedPolicyArns"]), "service-role/AWSLambdaVPCAccessExecutionRole") {
				t.Errorf("%s: %s runs in a VPC but its role %s cannot create network interfaces: %s", env, id, roleRef[0], js(role["ManagedPolicyArns"]))
			}
		}
		if vpcFns < 2 {
			t.Errorf("%s: %d VPC functions, want the limiter and the Redis rotation at least", env, vpcFns)
		}
	}
}

func TestCache_NeverEvictsTheLimitersKeys(t *testing.T) {
	// GIVEN the dev pipeline WHEN synthesized THEN Redis runs with a parameter
	// group whose eviction policy is noeviction (approval logs have a TTL and
	// would be evicted under volatile-lru, forgetting the window)
	st := system(t, "dev").Pipeline.Stack
	pg := only(t, resources(t, st, "AWS::ElastiCache::ParameterGroup"), "cache parameter group")
	if js(pg["Properties"]) != `{"maxmemory-policy":"noeviction"}` || pg["CacheParameterGroupFamily"] != "redis7" {
		t.Fatalf("parameter group %v", pg)
	}
	rg := only(t, resources(t, st, "AWS::ElastiCache::ReplicationGroup"), "replication group")
	if !strings.Contains(js(rg["CacheParameterGroupName"]), "Parameters") {
		t.Fatalf("replication group uses %v", rg["CacheParameterGroupName"])
	}
}
