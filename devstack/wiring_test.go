package devstack_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/huntaze/message-pipeline/devstack"
	"github.com/huntaze/message-pipeline/infra"
)

type resource struct {
	Type       string
	Properties map[string]any
}

// template synthesizes the dev stack as `make synth` does (bundling
// skipped) and returns its resources by logical id.
func template(t *testing.T) (infra.Environment, map[string]resource) {
	t.Helper()
	env, err := infra.LookupEnvironment(devstack.Environment)
	if err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"aws:cdk:bundling-stacks": &[]*string{}}})
	raw := assertions.Template_FromStack(infra.NewSystem(app, env).Pipeline.Stack, nil).ToJSON()
	b, err := json.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	var tpl struct{ Resources map[string]resource }
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	return env, tpl.Resources
}

// refersTo reports whether a template value (Ref, Fn::GetAtt, Fn::Join…)
// names the logical id.
func refersTo(v any, id string) bool {
	b, _ := json.Marshal(v)
	return strings.Contains(string(b), `"`+id+`"`)
}

func one(t *testing.T, res map[string]resource, typ string, match func(resource) bool) (string, resource) {
	t.Helper()
	var ids []string
	for id, r := range res {
		if r.Type == typ && match(r) {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("%d %s resources match, want 1: %v", len(ids), typ, ids)
	}
	return ids[0], res[ids[0]]
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// rate parses "rate(5 minutes)".
func rate(t *testing.T, expr string) time.Duration {
	t.Helper()
	var n int
	var unit string
	if _, err := fmt.Sscanf(strings.TrimSuffix(strings.TrimPrefix(expr, "rate("), ")"), "%d %s", &n, &unit); err != nil {
		t.Fatalf("schedule %q: %v", expr, err)
	}
	per := map[string]time.Duration{"minute": time.Minute, "minutes": time.Minute, "hour": time.Hour, "hours": time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour}[unit]
	return time.Duration(n) * per
}

// localOnly are the variables the local functions get and the stack's do
// not, and stackOnly the reverse, each for a reason that is not drift: a
// local redis-server has no TLS, and no AUTH token in Secrets Manager.
var (
	localOnly = []string{"REDIS_TLS"}
	stackOnly = []string{"REDIS_AUTH_SECRET_ARN"}
	// scaled are the variables a scaled window changes (devstack.Scale).
	scaled = []string{"RATE_WINDOW", "CALLER_WINDOW", "RATE_LIMITER_FLAG_TTL", "SEND_MAX_BACKOFF", "RATE_RETURN_SLACK", "OUTAGE_BACKOFF", "OUTAGE_BACKOFF_MAX"}
)

func names(env map[string]string) []string {
	return slices.Sorted(maps.Keys(env))
}

func TestEveryLocalLambdaRunsAsTheSynthesizedTemplateDefinesIt(t *testing.T) {
	// GIVEN the synthesized dev stack, and the functions the local assembly
	// runs with the stack's windows and with a window scaled to 3 s
	env, res := template(t)
	local := devstack.Wire(env, devstack.LocalResources(), 0, 0).Functions()
	scaledFns := devstack.Wire(env, devstack.LocalResources(), 3*time.Second, 0).Functions()
	if len(local) != 3 {
		t.Fatalf("the assembly runs %d functions, want the API, the limiter and the replay", len(local))
	}
	for i, fn := range local {
		t.Run(fn.ID, func(t *testing.T) {
			// WHEN the function's template resource is looked up by name
			id, r := one(t, res, "AWS::Lambda::Function", func(r resource) bool { return r.Properties["FunctionName"] == fn.FunctionName(env.Name) })
			p := r.Properties

			// THEN its handler, runtime, timeout and memory are the template's
			if p["Handler"] != fn.Handler || !strings.HasPrefix(fmt.Sprint(p["Runtime"]), "provided.") {
				t.Errorf("template runs %v on %v; the assembly runs the host-built main as %q on the custom runtime API", p["Handler"], p["Runtime"], fn.Handler)
			}
			if num(p["Timeout"]) != fn.Timeout.Seconds() || int(num(p["MemorySize"])) != fn.MemoryMB {
				t.Errorf("template timeout %v s, memory %v MB; the assembly %s, %d MB", p["Timeout"], p["MemorySize"], fn.Timeout, fn.MemoryMB)
			}

			// AND its environment has the template's variable names (but for
			// the local Redis), with the template's value wherever that is
			// not a resource reference
			vars, _ := p["Environment"].(map[string]any)["Variables"].(map[string]any)
			tplNames := slices.Sorted(maps.Keys(vars))
			want := slices.DeleteFunc(slices.Clone(tplNames), func(n string) bool { return slices.Contains(stackOnly, n) })
			got := slices.DeleteFunc(names(fn.Env), func(n string) bool { return slices.Contains(localOnly, n) })
			if !slices.Equal(got, want) {
				t.Errorf("environment names drifted:\n template %v\n local    %v", tplNames, names(fn.Env))
			}
			for k, v := range vars {
				if s, literal := v.(string); literal && fn.Env[k] != s {
					t.Errorf("%s: template %q, local %q", k, s, fn.Env[k])
				}
			}
			// AND a scaled window changes only the scaled variables
			for _, k := range names(scaledFns[i].Env) {
				if scaledFns[i].Env[k] != fn.Env[k] && !slices.Contains(scaled, k) {
					t.Errorf("%s changes with the window (%q → %q) but is not a scaled window", k, fn.Env[k], scaledFns[i].Env[k])
				}
			}

			// AND it is invoked with the event the stack gives it
			switch fn.Event.Kind {
			case "sqs":
				_, m := one(t, res, "AWS::Lambda::EventSourceMapping", func(m resource) bool { return refersTo(m.Properties["FunctionName"], id) })
				mp := m.Properties
				window := time.Duration(num(mp["MaximumBatchingWindowInSeconds"])) * time.Second
				types, _ := json.Marshal(mp["FunctionResponseTypes"])
				partial := strings.Contains(string(types), `"ReportBatchItemFailures"`)
				concurrency := 0
				if sc, ok := mp["ScalingConfig"].(map[string]any); ok {
					concurrency = int(num(sc["MaximumConcurrency"]))
				}
				if int(num(mp["BatchSize"])) != fn.Event.BatchSize || window != fn.Event.BatchingWindow || partial != fn.Event.ReportBatchItemFailures || concurrency != fn.Event.MaxConcurrency {
					t.Errorf("event source mapping: batch %v, window %s, partial batch response %v, concurrency %d; the assembly's poller: %d, %s, %v, %d",
						mp["BatchSize"], window, partial, concurrency, fn.Event.BatchSize, fn.Event.BatchingWindow, fn.Event.ReportBatchItemFailures, fn.Event.MaxConcurrency)
				}
				if !refersTo(mp["EventSourceArn"], "QueuesRateLimiterQueue") && !strings.Contains(fmt.Sprint(mp["EventSourceArn"]), "RateLimiterQueue") {
					t.Errorf("the mapping reads %v, not the intake queue", mp["EventSourceArn"])
				}
			case "http-api":
				integID, integ := one(t, res, "AWS::ApiGatewayV2::Integration", func(r resource) bool { return refersTo(r.Properties["IntegrationUri"], id) })
				if integ.Properties["PayloadFormatVersion"] != fn.Event.PayloadFormat || integ.Properties["IntegrationType"] != "AWS_PROXY" {
					t.Errorf("integration %v, payload format %v; the front sends format %s events", integ.Properties["IntegrationType"], integ.Properties["PayloadFormatVersion"], fn.Event.PayloadFormat)
				}
				authID, auth := one(t, res, "AWS::ApiGatewayV2::Authorizer", func(r resource) bool { return r.Properties["AuthorizerType"] == "JWT" })
				jc, _ := auth.Properties["JwtConfiguration"].(map[string]any)
				var aud []string
				for _, a := range jc["Audience"].([]any) {
					aud = append(aud, fmt.Sprint(a))
				}
				if jc["Issuer"] != fn.Event.Issuer || !slices.Equal(aud, fn.Event.Audiences) {
					t.Errorf("authorizer trusts %v for %v; the front %s for %v", jc["Issuer"], aud, fn.Event.Issuer, fn.Event.Audiences)
				}
				var routes []string
				for _, r := range res {
					if r.Type == "AWS::ApiGatewayV2::Route" && refersTo(r.Properties["Target"], integID) {
						routes = append(routes, fmt.Sprint(r.Properties["RouteKey"]))
						if r.Properties["AuthorizationType"] != "JWT" || !refersTo(r.Properties["AuthorizerId"], authID) {
							t.Errorf("route %v is not behind the JWT authorizer", r.Properties["RouteKey"])
						}
					}
				}
				slices.Sort(routes)
				if want := slices.Sorted(slices.Values(fn.Event.Routes)); !slices.Equal(routes, want) {
					t.Errorf("routes: template %v, front %v", routes, want)
				}
			case "schedule":
				_, rule := one(t, res, "AWS::Events::Rule", func(r resource) bool { return refersTo(r.Properties["Targets"], id) })
				if every := rate(t, fmt.Sprint(rule.Properties["ScheduleExpression"])); every != fn.Event.Every {
					t.Errorf("schedule every %s; the assembly's every %s", every, fn.Event.Every)
				}
				for _, target := range rule.Properties["Targets"].([]any) {
					tg := target.(map[string]any)
					for _, k := range []string{"Input", "InputPath", "InputTransformer"} {
						if tg[k] != nil {
							t.Errorf("the rule's target has %s: the function gets that, not the scheduled event", k)
						}
					}
				}
			default:
				t.Errorf("event kind %q", fn.Event.Kind)
			}
		})
	}
}

func TestScaledWindowsKeepTheirShareOfTheWindow(t *testing.T) {
	// GIVEN the dev stack's settings (RATE_MARGIN 2 s, RATE_RETURN_SLACK 1 s
	// at a 60 s window)
	env, err := infra.LookupEnvironment(devstack.Environment)
	if err != nil {
		t.Fatal(err)
	}
	full := devstack.Wire(env, devstack.LocalResources(), 0, 0)
	// WHEN the window is scaled to 4 s
	w := devstack.Wire(env, devstack.LocalResources(), 4*time.Second, 0)
	// THEN the gate and the limiter share one limit, the count is the
	// stack's, and the margin and slack are the same part of the window
	if w.Scraper.Limit != w.Limiter.Limit || w.API.Limit != w.Limiter.Limit || w.Limiter.Limit.Count != env.SendLimit.Count || w.Limiter.Limit.Window != 4*time.Second {
		t.Fatalf("limits: gate %+v, limiter %+v, api %+v; stack %+v", w.Scraper.Limit, w.Limiter.Limit, w.API.Limit, env.SendLimit)
	}
	share := func(d, window time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(window), 'f', 6, 64)
	}
	if share(w.Scraper.RateMargin, 4*time.Second) != share(full.Scraper.RateMargin, env.SendLimit.Window) || w.Scraper.RateMargin <= 0 {
		t.Errorf("margin %s at 4 s; %s at %s", w.Scraper.RateMargin, full.Scraper.RateMargin, env.SendLimit.Window)
	}
	if share(w.Limiter.ReturnSlack, 4*time.Second) != share(full.Limiter.ReturnSlack, env.SendLimit.Window) || w.Limiter.ReturnSlack <= 0 {
		t.Errorf("slack %s at 4 s; %s at %s", w.Limiter.ReturnSlack, full.Limiter.ReturnSlack, env.SendLimit.Window)
	}
	// AND what measures the outside world keeps its default
	if w.Scraper.NavTimeout != full.Scraper.NavTimeout || w.Scraper.Heartbeat != full.Scraper.Heartbeat || w.Scraper.LedgerTTL != full.Scraper.LedgerTTL {
		t.Errorf("timeouts scaled: %+v", w.Scraper)
	}
}
