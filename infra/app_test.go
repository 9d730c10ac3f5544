package infra

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"
)

func TestLookupEnvironment(t *testing.T) {
	env, err := LookupEnvironment("")
	if err != nil || env.Name != "dev" || env.Region != "us-east-1" {
		t.Fatalf("default environment = %+v, %v; want dev in us-east-1", env, err)
	}
	if _, err := LookupEnvironment("qa"); err == nil || !strings.Contains(err.Error(), "-c env=NAME") {
		t.Fatalf("unknown environment error = %v", err)
	}
	if got := env.StackName("Messaging"); got != "Huntaze-dev-Messaging" {
		t.Fatalf("stack name = %q", got)
	}
}

func TestEnvironmentFromContext(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{EnvContextKey: "staging"}})
	env, err := EnvironmentFromContext(app)
	if err != nil || env.Name != "staging" {
		t.Fatalf("env from context = %+v, %v", env, err)
	}
}

// Every environment synthesizes with the cdk-nag AwsSolutions pack applied
// and not one finding, error or warning.
func TestSystem_EveryEnvironmentSynthesizesWithoutNagFindings(t *testing.T) {
	for _, name := range EnvironmentNames() {
		t.Run(name, func(t *testing.T) {
			env, err := LookupEnvironment(name)
			if err != nil {
				t.Fatal(err)
			}
			app := awscdk.NewApp(nil)
			sys := NewSystem(app, env)
			stack := sys.Messaging.Stack
			if got := *stack.StackName(); got != "Huntaze-"+name+"-Messaging" {
				t.Fatalf("stack name = %q", got)
			}
			assertions.Template_FromStack(stack, nil).ResourceCountIs(jsii.String("AWS::SQS::Queue"), jsii.Number(4))
			annotations := assertions.Annotations_FromStack(stack)
			nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
			if errs := annotations.FindError(jsii.String("*"), nag); len(*errs) > 0 {
				t.Errorf("cdk-nag errors: %s", describe(errs))
			}
			if warns := annotations.FindWarning(jsii.String("*"), nag); len(*warns) > 0 {
				t.Errorf("cdk-nag warnings: %s", describe(warns))
			}
		})
	}
}

func describe(msgs *[]*cxapi.SynthesisMessage) string {
	var b strings.Builder
	for _, m := range *msgs {
		b.WriteString("\n  " + *m.Id + ": ")
		if s, ok := m.Entry.Data.(string); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}
