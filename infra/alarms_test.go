package infra

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
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
	"scraper-breaker-open":       {"circuit_state", "Maximum", 60, 2, 5, "GreaterThanOrEqualToThreshold"},
	"scraper-success-rate":       {"scraping_success_rate", "", 300, 90, 3, "LessThanThreshold"},
	"api-failure-rate":           {"api_failure_rate", "", 300, 5, 2, "GreaterThanThreshold"},
	"delivery-latency-p95":       {"delivery_latency_ms", "p95", 300, 120000, 3, "GreaterThanThreshold"},
	// session health (issue 24): due, broken or rotating sessions, or the check failing
	"session-renewal-due": {"sessions_unhealthy", "", 21600, 0, 1, "GreaterThanThreshold"},
}

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
			// THEN each alarm notifies huntaze-cost-alerts
			if actions := js(a["AlarmActions"]); !strings.Contains(actions, "Topic") && !strings.Contains(actions, AlertTopicName) {
				t.Errorf("%s %s notifies %v", env, name, actions)
			}
			// (the session check's alarm breaches on missing data: no
			// check ran)
			if want := map[bool]string{true: "breaching", false: "notBreaching"}[name == SessionRenewalAlarm]; a["TreatMissingData"] != want {
				t.Errorf("%s %s treats missing data as %v", env, name, a["TreatMissingData"])
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
