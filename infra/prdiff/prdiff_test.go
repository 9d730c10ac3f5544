package prdiff

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// repoRoot is the directory holding go.mod.
func repoRoot(t *testing.T) string {
	d, _ := os.Getwd()
	for ; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatal("no go.mod")
		}
	}
}

// cli is the project's pinned CDK CLI, run on the project's Node.
func cli(t *testing.T) (string, []string) {
	root := repoRoot(t)
	bin := filepath.Join(root, "node_modules", ".bin")
	if _, err := os.Stat(filepath.Join(bin, "cdk")); err != nil {
		t.Fatalf("the CDK CLI is missing (%v): run make deps", err)
	}
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"CDK_DISABLE_VERSION_CHECK=1", "CDK_DISABLE_CLI_TELEMETRY=true", "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1")
	return filepath.Join(bin, "cdk"), env
}

// build compiles the command (go run would turn its exit status into 1).
func build(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "prdiff")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/prdiff").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// assembly synthesizes a one-stack app: a table with the given removal
// policy, a queue, and the outputs named.
func assembly(t *testing.T, removal awscdk.RemovalPolicy, extraStack bool, outputs ...string) string {
	dir := t.TempDir()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(dir)})
	stack := awscdk.NewStack(app, jsii.String("Huntaze-test-Pipeline"), nil)
	table := awsdynamodb.NewTable(stack, jsii.String("Fallback"), &awsdynamodb.TableProps{
		PartitionKey:  &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:   awsdynamodb.BillingMode_PAY_PER_REQUEST,
		RemovalPolicy: removal,
	})
	for _, o := range outputs {
		awscdk.NewCfnOutput(stack, jsii.String(o), &awscdk.CfnOutputProps{Value: table.TableName()})
	}
	if extraStack {
		// the pipeline depends on the messaging stack, as in the real app
		messaging := awscdk.NewStack(app, jsii.String("Huntaze-test-Messaging"), nil)
		awssqs.NewQueue(messaging, jsii.String("Intake"), nil)
		stack.AddDependency(messaging, jsii.String("queues"))
	}
	app.Synth(nil)
	return dir
}

func TestARetentionFlipAndADroppedOutputAreShownAndFlagged(t *testing.T) {
	cdk, env := cli(t)
	// GIVEN a base whose table is retained and which exports ApiUrl, and a
	// head that deletes the table with the stack, no longer exports ApiUrl,
	// and no longer has the messaging stack
	base := assembly(t, awscdk.RemovalPolicy_RETAIN, true, "ApiUrl", "ResultsBucket")
	head := assembly(t, awscdk.RemovalPolicy_DESTROY, false, "ResultsBucket")

	// WHEN the CLI diffs them through Run
	var out bytes.Buffer
	findings, err := Run(context.Background(), Options{CDK: cdk, Base: base, Head: head, Env: env, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}

	// THEN the report shows both policies going from Retain to Delete and
	// the output going away
	report := out.String()
	for _, want := range []string{"[~] DeletionPolicy", "[~] UpdateReplacePolicy", "[-] Retain", "[+] Delete", "[-] Output ApiUrl", "Huntaze-test-Messaging"} {
		if !strings.Contains(report, want) {
			t.Errorf("the report lacks %q:\n%s", want, report)
		}
	}
	// AND each is a finding
	got := map[string]bool{}
	for _, f := range findings {
		got[f.String()] = true
	}
	for _, want := range []string{
		"Huntaze-test-Pipeline: changes the DeletionPolicy of AWS::DynamoDB::Table Fallback",
		"Huntaze-test-Pipeline: changes the UpdateReplacePolicy of AWS::DynamoDB::Table Fallback",
		"Huntaze-test-Pipeline: removes output ApiUrl",
		"Huntaze-test-Messaging: removes the whole stack",
	} {
		if !got[want] {
			t.Errorf("no finding %q in %v", want, findings)
		}
	}

	// AND the command exits with ExitDestructive, naming them
	cmd := exec.Command(build(t), "-base", base, "-head", head, "-cdk", cdk)
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != ExitDestructive || !strings.Contains(string(b), "DESTRUCTIVE: 4 change(s)") {
		t.Errorf("prdiff exited %d (%v), want %d:\n%s", code, err, ExitDestructive, b)
	}
}

func TestAnUnchangedHeadIsCleanAndExitsZero(t *testing.T) {
	cdk, env := cli(t)
	// GIVEN the same app (two stacks, one depending on the other) twice
	base := assembly(t, awscdk.RemovalPolicy_RETAIN, true, "ApiUrl")
	head := assembly(t, awscdk.RemovalPolicy_RETAIN, true, "ApiUrl")
	// WHEN diffed
	cmd := exec.Command(build(t), "-base", base, "-head", head, "-cdk", cdk)
	cmd.Env = env
	b, err := cmd.CombinedOutput()
	// THEN nothing is flagged and it exits 0
	if err != nil || !strings.Contains(string(b), "nothing would be replaced or deleted") {
		t.Fatalf("prdiff: %v\n%s", err, b)
	}
}

func TestScanReadsTheCLIsImpactWords(t *testing.T) {
	// GIVEN a report as cdk diff --no-color prints it (aws-cdk 2.1148.1)
	report := `Stack S
Resources
[-] AWS::SQS::Queue Q Q123 destroy
[-] AWS::S3::Bucket B B456 orphan
[+] AWS::SNS::Topic T T789
[~] AWS::ECS::TaskDefinition Task Task0AB replace
 └─ [~] ContainerDefinitions (requires replacement)
[~] AWS::Lambda::Function Fn Fn1 may be replaced
[~] AWS::DynamoDB::Table Table Table2
 ├─ [~] DeletionPolicy
 │   ├─ [-] Retain
 │   └─ [+] Delete
 └─ [-] Output Nested: {"Value":"x"}

Outputs
[-] Output ApiUrl: {"Value":"x"}
[~] Output Other: {"Value":"y"} to {"Value":"z"}
[+] Output New: {"Value":"n"}
`
	// WHEN scanned
	var got []string
	for _, f := range Scan("S", report) {
		got = append(got, f.What)
	}
	// THEN exactly the destructive changes are found
	want := []string{
		"deletes AWS::SQS::Queue Q", "removes AWS::S3::Bucket B from the stack (retained, no longer managed)",
		"replaces AWS::ECS::TaskDefinition Task", "may replace AWS::Lambda::Function Fn",
		"changes the DeletionPolicy of AWS::DynamoDB::Table Table", "removes output ApiUrl",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
