package infra

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// goBundler builds a Go Lambda locally at synth (`go build` for
// linux/arm64, stripped, no RPC). CDK skips it in tests
// (aws:cdk:bundling-stacks = []); it never needs Docker.
type goBundler struct {
	root, pkg string
}

// TryBundle implements awscdk.ILocalBundling.
func (b *goBundler) TryBundle(outputDir *string, _ *awscdk.BundlingOptions) *bool {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags=lambda.norpc", "-o", filepath.Join(*outputDir, LambdaHandler), "./"+b.pkg)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build %s for Lambda failed: %v\n%s\n", b.pkg, err, out)
		return jsii.Bool(false)
	}
	return jsii.Bool(true)
}

// RepoRoot finds the directory holding go.mod, from the working directory up
// (cdk runs the app at the root; tests run in infra/).
func RepoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			panic("infra: no go.mod above " + dir)
		}
	}
}

// GoFunctionProps configures one Go Lambda (what is not its Lambda).
type GoFunctionProps struct {
	Env Environment
	// Environment is the function's rendered settings (FunctionEnvironment
	// adds what every function gets).
	Environment    map[string]string
	Vpc            awsec2.IVpc
	SecurityGroups []awsec2.ISecurityGroup
}

// GoFunction is a Go Lambda on provided.al2023 / arm64 with its own role
// (no managed policies), log group with retention, and X-Ray tracing.
type GoFunction struct {
	constructs.Construct
	Function awslambda.Function
	Role     awsiam.Role
	LogGroup awslogs.LogGroup
}

// NewGoFunction builds the function from its package at synth.
func NewGoFunction(scope constructs.Construct, l Lambda, props GoFunctionProps) *GoFunction {
	c := constructs.NewConstruct(scope, jsii.String(l.ID))
	root := RepoRoot()
	name := l.FunctionName(props.Env.Name)
	logs := awslogs.NewLogGroup(c, jsii.String("Logs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String("/aws/lambda/" + name),
		Retention:     retention(props.Env),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(c, jsii.String("Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Runs " + name),
	})
	logs.GrantWrite(role)
	env := environment(FunctionEnvironment(props.Env.Name, props.Environment))
	fp := &awslambda.FunctionProps{
		FunctionName: jsii.String(name),
		Description:  jsii.String(l.Description),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String(LambdaHandler),
		Code: awslambda.Code_FromAsset(jsii.String(filepath.Join(root, l.Package)), &awss3assets.AssetOptions{
			AssetHashType: awscdk.AssetHashType_OUTPUT,
			Bundling: &awscdk.BundlingOptions{
				Image: awscdk.DockerImage_FromRegistry(jsii.String("public.ecr.aws/docker/library/golang:1.26")),
				Local: &goBundler{root: root, pkg: l.Package},
			},
		}),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(l.Timeout.Seconds())),
		MemorySize:    jsii.Number(float64(l.MemoryMB)),
		Environment:   &env,
		Role:          role,
		LogGroup:      logs,
		Tracing:       awslambda.Tracing_ACTIVE,
		LoggingFormat: awslambda.LoggingFormat_JSON,
	}
	if props.Vpc != nil {
		// Lambda creates and deletes the function's network interfaces with
		// the function's own role: without these actions it refuses to create
		// a VPC function (deploy blocker found in review).
		role.AddManagedPolicy(awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("service-role/AWSLambdaVPCAccessExecutionRole")))
		fp.Vpc = props.Vpc
		fp.VpcSubnets = &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
		fp.SecurityGroups = &props.SecurityGroups
	}
	fn := awslambda.NewFunction(c, jsii.String("Function"), fp)
	suppress(role,
		Suppression{Rule: "AwsSolutions-IAM5", Reason: "Actions without resource ARNs, where AWS requires '*': X-Ray PutTraceSegments/PutTelemetryRecords (tracing), and secretsmanager:GetRandomPassword (rotation functions).", AppliesTo: []string{"Resource::*"}},
		Suppression{Rule: "AwsSolutions-IAM5", Reason: "Log streams are created at run time inside the function's own log group (log-group:<name>:*).", AppliesTo: []string{"regex:/^Resource::<.*Logs.*\\.Arn>:\\*$/"}},
		Suppression{Rule: "AwsSolutions-IAM4", Reason: "AWSLambdaVPCAccessExecutionRole: the ENI actions Lambda needs in a VPC take no resource ARN.", AppliesTo: []string{"Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}},
	)
	return &GoFunction{Construct: c, Function: fn, Role: role, LogGroup: logs}
}
