package infra

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
)

// alarmSpec is what an alarm must watch and when it fires.
type alarmSpec struct {
	metric    string // MetricName, or the expression's label for metric math
	statistic string // Statistic or ExtendedStatistic ("" for math)
	period    float64
	threshold float64
	periods   float64
	cmp       string
}

var wantAlarms = map[string]alarmSpec{
	// seed 003 R5, exactly as specified
	"fifo-oldest-message":        {"ApproximateAgeOfOldestMessage", "Maximum", 60, 600, 1, "GreaterThanThreshold"},
	"fifo-backlog":               {"ApproximateNumberOfMessagesVisible", "Maximum", 60, 500, 1, "GreaterThanThreshold"},
	"limiter-errors":             {"Errors", "Sum", 300, 10, 1, "GreaterThanThreshold"},
	"scraper-cpu":                {"CPUUtilization", "Average", 300, 70, 2, "GreaterThanThreshold"},
	"rate-limiter-dlq-not-empty": {"ApproximateNumberOfMessagesVisible", "Maximum", 60, 0, 1, "GreaterThanThreshold"},
	"workflows-dlq-not-empty":    {"ApproximateNumberOfMessagesVisible", "Maximum", 60, 0, 1, "GreaterThanThreshold"},
	"limiter-redis-errors":       {"redis_errors", "Sum", 60, 0, 3, "GreaterThanThreshold"},
	"limiter-forward-failures":   {"forward_failures", "Sum", 60, 0, 3, "GreaterThanThreshold"},
	"intake-oldest-message":      {"ApproximateAgeOfOldestMessage", "Maximum", 300, 3600, 1, "GreaterThanThreshold"},
	"scraper-session-invalid":    {"session_invalid", "Sum", 300, 0, 1, "GreaterThanThreshold"},
	"scraper-dead-letter-failed": {"dead_letter_failed", "Sum", 300, 0, 1, "GreaterThanThreshold"},
	"scraper-breaker-open":       {"circuit_state", "Maximum", 60, 2, 5, "GreaterThanOrEqualToThreshold"},
	"scraper-success-rate":       {"scraping_success_rate", "", 300, 90, 3, "LessThanThreshold"},
	"api-failure-rate":           {"api_failure_rate", "", 300, 5, 2, "GreaterThanThreshold"},
	"delivery-latency-p95":       {"delivery_latency_ms", "p95", 300, 120000, 3, "GreaterThanThreshold"},
	// issue 26: every silent failure
	"api-lambda-errors":          {"Errors", "Sum", 300, 0, 2, "GreaterThanThreshold"},
	"api-lambda-throttles":       {"Throttles", "Sum", 300, 0, 1, "GreaterThanThreshold"},
	"api-5xx":                    {"5xx", "Sum", 300, 0, 2, "GreaterThanThreshold"},
	"api-latency-p95":            {"Latency", "p95", 300, 3000, 3, "GreaterThanThreshold"},
	"replay-errors":              {"Errors", "Sum", 300, 0, 2, "GreaterThanThreshold"},
	"replay-not-running":         {"Invocations", "Sum", 900, 1, 1, "LessThanThreshold"},
	"redis-auth-rotation-errors": {"Errors", "Sum", 300, 0, 1, "GreaterThanThreshold"},
	"scraper-no-running-tasks":   {"scraper_running_tasks", "", 60, 1, 10, "LessThanThreshold"},
	// session health (issue 24): due, broken or rotating sessions, or the check failing
	"session-renewal-due": {"sessions_unhealthy", "", 21600, 0, 1, "GreaterThanThreshold"},
}

// expectedTraffic are the alarms on a signal that must be there: no data
// is the failure they exist for.
var expectedTraffic = map[string]bool{"replay-not-running": true, "scraper-no-running-tasks": true,
	// the session check's alarm: no data means no check ran
	SessionRenewalAlarm: true}

// alarmOf reduces a synthesized alarm to its spec (metric math: the
// labelled expression that is returned).
func alarmOf(a map[string]any) alarmSpec {
	s := alarmSpec{threshold: num(a["Threshold"]), periods: num(a["EvaluationPeriods"]), cmp: fmt.Sprint(a["ComparisonOperator"])}
	if a["MetricName"] != nil {
		s.metric, s.period = fmt.Sprint(a["MetricName"]), num(a["Period"])
		s.statistic = fmt.Sprint(a["Statistic"])
		if a["ExtendedStatistic"] != nil {
			s.statistic = fmt.Sprint(a["ExtendedStatistic"])
		}
		return s
	}
	for _, m := range a["Metrics"].([]any) {
		q := m.(map[string]any)
		if q["ReturnData"] != false && q["Expression"] != nil {
			s.metric = fmt.Sprint(q["Label"])
		}
		if stat, ok := q["MetricStat"].(map[string]any); ok {
			s.period = num(stat["Period"]) // the expression's inputs share it
		}
	}
	return s
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func TestEveryAlarmWatchesItsSignalAndNotifiesTheAlertTopic(t *testing.T) {
	for _, env := range []string{"dev", "staging", "prod"} {
		// GIVEN the environment's pipeline stack
		st := system(t, env).Pipeline.Stack
		got := map[string]alarmSpec{}
		for _, a := range resources(t, st, "AWS::CloudWatch::Alarm") {
			name, ok := strings.CutPrefix(fmt.Sprint(a["AlarmName"]), "huntaze-"+env+"-")
			if !ok {
				continue // scaling alarms
			}
			// THEN each alarm notifies the environment's alerts topic when it
			// fires and when it recovers
			topic := js([]any{st.Resolve(system(t, env).Pipeline.Alarms.Topic.TopicArn())})
			if got := js(a["AlarmActions"]); got != topic {
				t.Errorf("%s %s: alarm actions %s, want %s", env, name, got, topic)
			}
			if got := js(a["OKActions"]); got != topic {
				t.Errorf("%s %s: OK actions %s, want %s", env, name, got, topic)
			}
			// AND missing data is a failure only where traffic is expected
			if want := map[bool]string{true: "breaching", false: "notBreaching"}[expectedTraffic[name]]; a["TreatMissingData"] != want {
				t.Errorf("%s %s treats missing data as %v, want %s", env, name, a["TreatMissingData"], want)
			}
			got[name] = alarmOf(a)
		}
		// AND watches exactly the metric, statistic, period and threshold
		for name, want := range wantAlarms {
			if got[name] != want {
				t.Errorf("%s %s: got %+v, want %+v", env, name, got[name], want)
			}
		}
		if len(got) != len(wantAlarms) {
			t.Errorf("%s: %d alarms, want %d: %v", env, len(got), len(wantAlarms), got)
		}
	}
}

func TestTheSuccessRateAndAPIFailureRateAreComputedFromTheCounts(t *testing.T) {
	st := system(t, "dev").Pipeline.Stack
	exprs := map[string]string{}
	for _, a := range resources(t, st, "AWS::CloudWatch::Alarm") {
		for _, m := range asSlice(a["Metrics"]) {
			q := m.(map[string]any)
			if q["Expression"] != nil {
				exprs[fmt.Sprint(q["Label"])] = fmt.Sprint(q["Expression"]) + " " + js(a["Metrics"])
			}
		}
	}
	for label, parts := range map[string][]string{
		"scraping_success_rate": {"100 * s / (s + f)", "scraping_success_count", "scraping_failure_count"},
		"api_failure_rate":      {"100 * fb / (q + fb)", "messages_queued", "fallback_stored"},
	} {
		for _, p := range parts {
			if !strings.Contains(exprs[label], p) {
				t.Errorf("%s: %q lacks %q", label, exprs[label], p)
			}
		}
	}
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func TestEachLambdaAlarmWatchesItsOwnFunction(t *testing.T) {
	// GIVEN the dev pipeline
	s := system(t, "dev")
	st := s.Pipeline.Stack
	ref := func(fn *GoFunction) string { return js(st.Resolve(fn.Function.FunctionName())) }
	want := map[string]string{
		"api-lambda-errors": ref(s.Pipeline.Functions.API), "api-lambda-throttles": ref(s.Pipeline.Functions.API),
		"replay-errors": ref(s.Pipeline.Functions.Replay), "replay-not-running": ref(s.Pipeline.Functions.Replay),
		"redis-auth-rotation-errors": ref(s.Pipeline.Cache.Rotation),
		"limiter-errors":             ref(s.Pipeline.Functions.Limiter),
		"api-5xx":                    js(st.Resolve(s.Pipeline.Functions.HTTPAPI.ApiId())), "api-latency-p95": js(st.Resolve(s.Pipeline.Functions.HTTPAPI.ApiId())),
	}
	for _, a := range resources(t, st, "AWS::CloudWatch::Alarm") {
		name := strings.TrimPrefix(fmt.Sprint(a["AlarmName"]), "huntaze-dev-")
		if w, ok := want[name]; ok {
			// THEN its dimension names that function (or that API)
			if !strings.Contains(js(a["Dimensions"]), w) {
				t.Errorf("%s watches %s, want %s", name, js(a["Dimensions"]), w)
			}
			delete(want, name)
		}
	}
	if len(want) > 0 {
		t.Errorf("alarms missing: %v", want)
	}
}

// runbookReferences are the names docs/runbook.md cites: stack outputs
// ("stack output `X`") and dashboard widgets ("the "X" widget").
var (
	runbookOutput = regexp.MustCompile("stack output `([A-Za-z0-9]+)`")
	runbookWidget = regexp.MustCompile(`"([^"]+)"\s+widget`)
)

func TestEveryAlarmHasBothActionsAndARunbookEntryWhoseNamesExist(t *testing.T) {
	// GIVEN the runbook and every environment's stacks
	b, err := os.ReadFile(RepoRoot() + "/docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	runbook := string(b)
	for _, env := range EnvironmentNames() {
		s := system(t, env)
		for _, a := range resources(t, s.Pipeline.Stack, "AWS::CloudWatch::Alarm") {
			name, ok := strings.CutPrefix(fmt.Sprint(a["AlarmName"]), "huntaze-"+env+"-")
			if !ok {
				continue // scaling alarms: their actions are the scaling policies
			}
			// THEN every alarm has an alarm and an OK action
			if len(asSlice(a["AlarmActions"])) == 0 || len(asSlice(a["OKActions"])) == 0 {
				t.Errorf("%s %s: alarm actions %v, OK actions %v", env, name, a["AlarmActions"], a["OKActions"])
			}
			// AND a runbook section
			if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(name) + `\s*$`).MatchString(runbook) {
				t.Errorf("docs/runbook.md has no '## %s'", name)
			}
		}
		// AND every stack output the runbook cites exists
		outputs := js((*assertions.Template_FromStack(s.Pipeline.Stack, nil).ToJSON())["Outputs"]) + js((*assertions.Template_FromStack(s.Messaging.Stack, nil).ToJSON())["Outputs"])
		for _, m := range runbookOutput.FindAllStringSubmatch(runbook, -1) {
			if !strings.Contains(outputs, `"`+m[1]+`":`) {
				t.Errorf("%s: docs/runbook.md cites stack output %s, which no stack has", env, m[1])
			}
		}
		// AND every dashboard widget it cites exists
		dashboard := resolve(only(t, resources(t, s.Pipeline.Stack, "AWS::CloudWatch::Dashboard"), "dashboard")["DashboardBody"])
		for _, m := range runbookWidget.FindAllStringSubmatch(runbook, -1) {
			title := strings.Join(strings.Fields(m[1]), " ") // a name may wrap in the markdown
			if !strings.Contains(dashboard, `"title":"`+title+`"`) {
				t.Errorf("docs/runbook.md cites the %q widget, which the dashboard does not have", m[1])
			}
		}
	}
	if n := len(runbookOutput.FindAllString(runbook, -1)); n < 3 {
		t.Errorf("the runbook cites %d stack outputs; the generated names (cluster, service, Redis) must come from outputs", n)
	}
}

func TestEveryAlarmHasARunbookEntry(t *testing.T) {
	// GIVEN the runbook
	b, err := os.ReadFile(RepoRoot() + "/docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## ([a-z0-9-]+)\s*$`).FindAllStringSubmatch(string(b), -1) {
		headings[m[1]] = true
	}
	// THEN every alarm the stack creates has a section named after it,
	// which its description links to
	for name := range system(t, "dev").Pipeline.Alarms.Alarms {
		if !headings[name] {
			t.Errorf("docs/runbook.md has no '## %s'", name)
		}
	}
	for _, a := range resources(t, system(t, "dev").Pipeline.Stack, "AWS::CloudWatch::Alarm") {
		if name, ok := strings.CutPrefix(fmt.Sprint(a["AlarmName"]), "huntaze-dev-"); ok && !strings.HasSuffix(fmt.Sprint(a["AlarmDescription"]), "docs/runbook.md#"+name) {
			t.Errorf("%s description %q does not link its runbook entry", name, a["AlarmDescription"])
		}
	}
}

func TestTheOnDemandFallbackTakesOverWhatSpotCannotPlace(t *testing.T) {
	for _, env := range []string{"dev", "staging", "prod"} {
		// GIVEN the pipeline stack
		st := system(t, env).Pipeline.Stack
		// THEN a second service runs the same task on FARGATE only, at 0
		// tasks by default
		var fallback map[string]any
		for id, s := range resources(t, st, "AWS::ECS::Service") {
			if strings.Contains(id, "OnDemandFallback") {
				fallback = s
			}
		}
		if fallback == nil || js(fallback["CapacityProviderStrategy"]) != `[{"CapacityProvider":"FARGATE","Weight":1}]` || fallback["DesiredCount"] != 0.0 {
			t.Fatalf("%s fallback service %v", env, fallback)
		}
		// AND its scaling alarms compare the Spot service's desired and
		// running task counts (less what the fallback runs): +1 after 3
		// minutes short, −1 after 10 minutes of surplus
		var cover, release bool
		for _, a := range resources(t, st, "AWS::CloudWatch::Alarm") {
			m := js(a["Metrics"])
			if !strings.Contains(m, "DesiredTaskCount") || !strings.Contains(m, "RunningTaskCount") {
				continue
			}
			switch {
			case strings.Contains(m, "desired - running - FILL(fallback, 0)") && a["EvaluationPeriods"] == 3.0 && a["Threshold"] == 1.0:
				cover = true
			case strings.Contains(m, "FILL(fallback, 0) + running - desired") && a["EvaluationPeriods"] == 10.0 && a["Threshold"] == 1.0:
				release = true
			}
		}
		if !cover || !release {
			t.Errorf("%s: cover alarm %t, release alarm %t", env, cover, release)
		}
	}
}

// Review of issue 24: the renewal step this issue adds (and the older ones
// beside it) has the operator type the session cookie on the command line,
// where it lands in the shell's history and in every local user's `ps`:
// a credential leaving its place. The value belongs in a file
// (--secret-string file://…, removed afterwards) or on stdin.
func TestRunbookNeverPutsASecretValueOnTheCommandLine(t *testing.T) {
	for _, doc := range []string{"docs/runbook.md", "docs/scraper.md", "README.md"} {
		// GIVEN an operator document
		b, err := os.ReadFile(RepoRoot() + "/" + doc)
		if err != nil {
			t.Fatal(err)
		}
		// THEN no command passes a secret's value inline
		for i, line := range strings.Split(string(b), "\n") {
			if regexp.MustCompile(`--secret-string\s+['"]`).MatchString(line) {
				t.Errorf("%s:%d: the secret value on the command line: %s", doc, i+1, strings.TrimSpace(line))
			}
		}
	}
}
