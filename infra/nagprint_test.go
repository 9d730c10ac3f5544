package infra

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestPrintNag(t *testing.T) {
	env, _ := LookupEnvironment("dev")
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"aws:cdk:bundling-stacks": []string{}}})
	sys := NewSystem(app, env)
	for _, st := range []awscdk.Stack{sys.Messaging.Stack, sys.Pipeline.Stack} {
		ann := assertions.Annotations_FromStack(st)
		nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
		t.Log(describe(ann.FindError(jsii.String("*"), nag)))
		t.Log(describe(ann.FindWarning(jsii.String("*"), nag)))
	}
}
