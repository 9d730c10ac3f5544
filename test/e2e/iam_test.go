package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/huntaze/message-pipeline/devstack"
	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/infra"
	"github.com/huntaze/message-pipeline/infra/iampolicy"
	"github.com/huntaze/message-pipeline/internal/queues"
)

// recorder records every AWS call the components make in these tests.
var recorder = emulator.NewCallRecorder()

// TestMain runs the tests, then checks that every AWS call they made is
// allowed by the role of the component that made it in the synthesized dev
// stack: a missing permission fails the run; a permission no test used is
// reported.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		missing, unused, err := iamCoverage(recorder.Calls())
		switch {
		case err != nil:
			fmt.Fprintln(os.Stderr, "IAM coverage:", err)
			code = 1
		case len(missing) > 0:
			fmt.Fprintf(os.Stderr, "IAM coverage: calls the synthesized roles do not allow:\n  %s\n", strings.Join(missing, "\n  "))
			code = 1
		default:
			fmt.Fprintf(os.Stderr, "IAM coverage: every recorded call is allowed; granted but not used here:\n  %s\n", strings.Join(unused, "\n  "))
		}
	}
	os.Exit(code)
}

// roles maps a component to the logical-id prefix of its role.
var roles = map[string]string{
	"api": "FunctionsApiRole", "replay": "FunctionsReplayRole", "ratelimiter": "FunctionsRateLimiterRole", "scraper": "ScraperTaskRole",
}

// label maps a local resource name to the label iampolicy gives the stack
// resource it stands for (the documented local → stack mapping).
func label(c emulator.Call) string {
	limiter, workflows := queues.RateLimiter(devstack.Environment), queues.Workflows(devstack.Environment)
	switch c.Resource {
	case limiter.Main.Name:
		return "limiter-queue"
	case limiter.DeadLetter.Name:
		return "limiter-dlq"
	case workflows.Main.Name:
		return "workflows-queue"
	case workflows.DeadLetter.Name:
		return "workflows-dlq"
	case devstack.FallbackTable:
		return "fallback-table"
	case devstack.IdempotencyTable:
		return "idempotency-table"
	case infra.FlagParameterName(devstack.Environment):
		return "flag-parameter"
	case devstack.AttemptsTable:
		return "attempts-table"
	}
	if key, ok := strings.CutPrefix(c.Resource, devstack.Bucket+"/"); ok {
		prefix, _, _ := strings.Cut(key, "/")
		return prefix + "/*"
	}
	return "unmapped:" + c.Resource
}

// required lists the grants one call needs: its IAM action on its resource,
// and the KMS use SQS makes on the caller's behalf for the encrypted queue.
func required(c emulator.Call) []string {
	prefix := map[string]string{"SQS": "sqs", "DynamoDB": "dynamodb", "S3": "s3", "SSM": "ssm", "Secrets Manager": "secretsmanager"}[c.Service]
	op := strings.TrimSuffix(c.Operation, "Batch") // SendMessageBatch needs sqs:SendMessage, and so on
	res := label(c)
	out := []string{prefix + ":" + op + " → " + res}
	if res == "workflows-queue" && op == "SendMessage" {
		out = append(out, "kms:GenerateDataKey → workflows-key", "kms:Decrypt → workflows-key")
	}
	if res == "workflows-queue" && op == "ReceiveMessage" {
		out = append(out, "kms:Decrypt → workflows-key")
	}
	return out
}

func iamCoverage(calls []emulator.Call) (missing, unused []string, err error) {
	env, err := infra.LookupEnvironment(devstack.Environment)
	if err != nil {
		return nil, nil, err
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"aws:cdk:bundling-stacks": &[]*string{}}})
	tpl, err := iampolicy.Parse(assertions.Template_FromStack(infra.NewSystem(app, env).Pipeline.Stack, nil).ToJSON())
	if err != nil {
		return nil, nil, err
	}
	used := map[string]bool{}
	granted := map[string][]string{}
	for component, prefix := range roles {
		id, err := tpl.RoleID(prefix)
		if err != nil {
			return nil, nil, err
		}
		granted[component] = tpl.Grants(id)
	}
	for _, c := range calls {
		g, ok := granted[c.Component]
		if !ok {
			return nil, nil, fmt.Errorf("component %q has no role in this test", c.Component)
		}
		for _, want := range required(c) {
			action, _, _ := strings.Cut(want, " → ")
			switch {
			case slices.Contains(g, want):
				used[c.Component+" "+want] = true
			case slices.Contains(g, action+" → *"):
				used[c.Component+" "+action+" → *"] = true
			default:
				missing = append(missing, fmt.Sprintf("%s: %s (%s %s on %s)", c.Component, want, c.Service, c.Operation, c.Resource))
			}
		}
	}
	for component, g := range granted {
		for _, grant := range g {
			if !used[component+" "+grant] && !strings.HasPrefix(grant, "logs:") && !strings.HasPrefix(grant, "xray:") && !strings.HasPrefix(grant, "ec2:") {
				unused = append(unused, component+": "+grant)
			}
		}
	}
	slices.Sort(missing)
	missing = slices.Compact(missing)
	slices.Sort(unused)
	return missing, unused, nil
}
