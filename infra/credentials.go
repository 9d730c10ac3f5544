package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
	"github.com/huntaze/message-pipeline/internal/queues"
)

// CredentialsProps configures the OnlyFans session secrets.
type CredentialsProps struct {
	Env Environment
}

// Credentials are the creators' OnlyFans sessions: one secret per creator,
// named Prefix+<creator> ({"sessionCookie": "..."}) and encrypted with Key.
// The secrets are created when a creator connects OnlyFans (docs/scraper.md),
// not by the stack: a stack-made secret would hold every creator, and a
// secret holds at most 64 KB.
type Credentials struct {
	constructs.Construct
	Key    awskms.Key
	Prefix string
	// SecretsArn matches every creator's session secret and nothing else.
	SecretsArn *string
	// Rotation re-validates a creator's secret; each secret's rotation
	// schedule names it.
	Rotation *GoFunction
}

// sessionSecretsFinding is cdk-nag's name for a grant on every session
// secret of an environment (partition, region and account may be tokens or
// literals: `cdk synth` resolves more of them than the tests' synthesis).
const sessionSecretsFinding = `regex:/^Resource::arn:.+:secretsmanager:.+:secret:huntaze\/[a-z]+\/onlyfans-session\/\*$/`

// SessionSecretPrefix is the name prefix of the session secrets of env.
func SessionSecretPrefix(env string) string { return "huntaze/" + env + "/onlyfans-session/" }

// NewCredentials creates the key, the ARN pattern the task may read, and
// the rotation function (seed 003 R8.5).
func NewCredentials(scope constructs.Construct, id string, props CredentialsProps) *Credentials {
	c := constructs.NewConstruct(scope, jsii.String(id))
	key := awskms.NewKey(c, jsii.String("Key"), &awskms.KeyProps{
		Description: jsii.String("Encrypts the OnlyFans creator sessions (" + props.Env.Name + ")"), EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	prefix := SessionSecretPrefix(props.Env.Name)
	// Secrets Manager appends "-" and six random characters to every name.
	arn := awscdk.Stack_Of(c).FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("secretsmanager"), Resource: jsii.String("secret"), ResourceName: jsii.String(prefix + "*"),
		ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
	// OnlyFans has no API to mint sessions: the rotation re-validates a
	// secret every 90 days (functions/rotation); renewal is manual.
	fn := NewGoFunction(c, "Rotation", GoFunctionProps{
		Env: props.Env, Package: "functions/rotation", FunctionName: queues.Name("huntaze-onlyfans-sessions-rotation", props.Env.Name),
		Description: "Rotates a secret (" + string(rotator.OnlyFansSessions) + ")", Timeout: awscdk.Duration_Minutes(jsii.Number(1)), MemoryMB: 128,
		Environment: environment(rotator.Settings{Kind: rotator.OnlyFansSessions}.Env()),
	})
	allow(fn.Role, []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}, arn)
	allow(fn.Role, []string{"kms:Decrypt", "kms:GenerateDataKey"}, key.KeyArn())
	fn.Function.AddPermission(jsii.String("SecretsManagerInvoke"), &awslambda.Permission{
		Principal: awsiam.NewServicePrincipal(jsii.String("secretsmanager.amazonaws.com"), nil), SourceAccount: awscdk.Stack_Of(c).Account(),
	})
	suppress(fn.Role, Suppression{Rule: "AwsSolutions-IAM5", Reason: "One secret per creator, created when the creator connects: the grant names the environment's session-secret prefix, nothing else.",
		AppliesTo: []string{sessionSecretsFinding}})
	return &Credentials{Construct: c, Key: key, Prefix: prefix, SecretsArn: arn, Rotation: fn}
}
