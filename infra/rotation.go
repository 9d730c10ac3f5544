package infra

import (
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
)

// RotationDays is the rotation period of every secret (seed 003 R8.5).
const RotationDays = 90

// rotationProps configures one rotation.
type rotationProps struct {
	Env            Environment
	Secret         awssecretsmanager.Secret
	Settings       rotator.Settings // the function's environment
	Name           string
	Vpc            awsec2.IVpc
	SecurityGroups []awsec2.ISecurityGroup
}

// newRotation schedules a 90-day rotation of a secret by the Go rotation
// function (functions/rotation), and the step that drops the old token.
func newRotation(scope constructs.Construct, id string, props rotationProps) *GoFunction {
	fn := NewGoFunction(scope, Lambda{ID: id, Package: "functions/rotation", Name: props.Name,
		Description: "Rotates a secret (" + string(props.Settings.Kind) + ")", Timeout: RotationTimeoutMinutes * time.Minute, MemoryMB: 128,
	}, GoFunctionProps{Env: props.Env, Environment: props.Settings.Env(), Vpc: props.Vpc, SecurityGroups: props.SecurityGroups})
	props.Secret.AddRotationSchedule(jsii.String("Rotation"), &awssecretsmanager.RotationScheduleOptions{
		RotationLambda: fn.Function, AutomaticallyAfter: awscdk.Duration_Days(jsii.Number(RotationDays)),
	})
	// The step after the rotation: once every client uses the new token,
	// SET drops the old one (rotator.EnforceStep; it waits EnforceAfter
	// from the rotation and then runs once).
	awsevents.NewRule(scope, jsii.String(id+"Enforce"), &awsevents.RuleProps{
		Description: jsii.String("Drops the previous Redis AUTH token once every client uses the current one"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(EnforceEveryMinutes))),
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fn.Function, &awseventstargets.LambdaFunctionProps{
			Event: awsevents.RuleTargetInput_FromObject(map[string]any{"SecretId": props.Secret.SecretArn(), "Step": rotator.EnforceStep}),
		})},
	})
	return fn
}

// RotationTimeoutMinutes leaves room for the steps' wait for ElastiCache to
// apply a token change (rotator.DefaultApplyWait, 4 minutes) plus the test.
const RotationTimeoutMinutes = 5

// EnforceEveryMinutes is how often the enforce step looks: the old token
// is dropped between EnforceAfter and EnforceAfter + this after a rotation.
const EnforceEveryMinutes = 15
