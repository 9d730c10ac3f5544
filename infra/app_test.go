//lint:file-ignore SA1019 synthesis messages come typed as cxapi.SynthesisMessage in aws-cdk-go v2.270; there is no other type to read them with.

package infra

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
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
