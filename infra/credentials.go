package infra

import (
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
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
//
// They are not rotated: OnlyFans has no API to mint a session, and a
// rotation that copied the cookie into a new version would record a
// successful rotation while the credential never changed. Health checks
// every session on a schedule instead (age of its current value, shape, no
// rotation attached) and an alarm asks for a renewal (docs/runbook.md).
type Credentials struct {
	constructs.Construct
	Key    awskms.Key
	Prefix string
	// SecretsArn matches every creator's session secret and nothing else.
	SecretsArn *string
	// Health is the scheduled session health check.
	Health *GoFunction
}

// SessionHealthEveryHours is how often every session is checked.
const SessionHealthEveryHours = 6

// sessionSecretsFinding is cdk-nag's name for a grant on every session
// secret of an environment (partition, region and account may be tokens or
// literals: `cdk synth` resolves more of them than the tests' synthesis).
const sessionSecretsFinding = `regex:/^Resource::arn:.+:secretsmanager:.+:secret:huntaze\/[a-z]+\/onlyfans-session\/\*$/`

// SessionSecretPrefix is the name prefix of the session secrets of env.
func SessionSecretPrefix(env string) string { return "huntaze/" + env + "/onlyfans-session/" }

// NewCredentials creates the key, the ARN pattern the task may read, and
// the scheduled session health check (seed 003 R8.5, docs/operations.md).
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
	settings := rotator.Settings{
		Kind: rotator.SessionHealth, SessionSecretPrefix: prefix, Environment: props.Env.Name,
		EnforceAfter: rotator.DefaultEnforceAfter, SessionRenewAfter: rotator.DefaultSessionRenewAfter,
		// Asks OnlyFans about each session (GET with the cookie; the
		// defaults match the scraper's built-in site profile). The function
		// runs outside the VPC: its only network is Secrets Manager and the
		// site.
		SessionProbe: rotator.DefaultSessionProbe,
	}
	fn := NewGoFunction(c, Lambda{ID: "SessionHealth", Package: "functions/rotation", Name: "huntaze-onlyfans-session-health",
		Description: "Checks every OnlyFans session secret (age, shape, no rotation attached, the site accepts it)", Timeout: 5 * time.Minute, MemoryMB: 128,
	}, GoFunctionProps{Env: props.Env, Environment: settings.Env()})
	allow(fn.Role, []string{"secretsmanager:GetSecretValue"}, arn)
	allow(fn.Role, []string{"secretsmanager:ListSecrets"}, jsii.String("*"))
	allow(fn.Role, []string{"kms:Decrypt"}, key.KeyArn())
	awsevents.NewRule(c, jsii.String("SessionHealthSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Checks every OnlyFans session secret"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Hours(jsii.Number(SessionHealthEveryHours))),
		Targets:     &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fn.Function, nil)},
	})
	suppress(fn.Role, Suppression{Rule: "AwsSolutions-IAM5", Reason: "One secret per creator, created when the creator connects: the grant names the environment's session-secret prefix, nothing else; secretsmanager:ListSecrets takes no resource ARN.",
		AppliesTo: []string{sessionSecretsFinding, "Resource::*"}})
	return &Credentials{Construct: c, Key: key, Prefix: prefix, SecretsArn: arn, Health: fn}
}
