package infra

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	apisetup "github.com/huntaze/message-pipeline/functions/api/setup"
	limitersetup "github.com/huntaze/message-pipeline/functions/ratelimiter/setup"
	replaysetup "github.com/huntaze/message-pipeline/functions/replay/setup"
	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// loaders are each component's own Load, by function name (without the
// environment suffix).
var loaders = map[string]func(map[string]string) error{
	"huntaze-messages-api":            func(e map[string]string) error { _, err := apisetup.Load(e); return err },
	"huntaze-fallback-replay":         func(e map[string]string) error { _, err := replaysetup.Load(e); return err },
	"huntaze-rate-limiter":            func(e map[string]string) error { _, err := limitersetup.Load(e); return err },
	"huntaze-redis-auth-rotation":     func(e map[string]string) error { _, err := rotator.Load(e); return err },
	"huntaze-onlyfans-session-health": func(e map[string]string) error { _, err := rotator.Load(e); return err },
}

// resolve renders a template value as the string the service would see:
// intrinsic functions become placeholders of the right shape.
func resolve(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		if j, ok := x["Fn::Join"].([]any); ok {
			parts := []string{}
			for _, p := range j[1].([]any) {
				parts = append(parts, resolve(p))
			}
			return strings.Join(parts, j[0].(string))
		}
		if ref, ok := x["Ref"].(string); ok {
			return "ref-" + ref
		}
		if ga, ok := x["Fn::GetAtt"].([]any); ok {
			if strings.HasSuffix(fmt.Sprint(ga[1]), "Port") {
				return "6380"
			}
			return fmt.Sprintf("%v-%v", ga[0], ga[1])
		}
	}
	return fmt.Sprint(v)
}

func environmentOf(vars any) map[string]string {
	out := map[string]string{}
	switch x := vars.(type) {
	case map[string]any: // Lambda: {"Variables": {...}}
		for k, v := range x["Variables"].(map[string]any) {
			out[k] = resolve(v)
		}
	case []any: // ECS: [{"Name": ..., "Value": ...}]
		for _, e := range x {
			kv := e.(map[string]any)
			out[kv["Name"].(string)] = resolve(kv["Value"])
		}
	}
	return out
}

func TestEveryFunctionAndTaskEnvironmentLoadsThroughItsComponentsLoad(t *testing.T) {
	for _, envName := range EnvironmentNames() {
		s := system(t, envName)
		for _, stack := range []awscdk.Stack{s.Messaging.Stack, s.Pipeline.Stack} {
			// GIVEN every Go function of the template
			for id, fn := range resources(t, stack, "AWS::Lambda::Function") {
				if fn["Runtime"] != "provided.al2023" {
					continue // CDK's own custom-resource handlers
				}
				name := strings.TrimSuffix(resolve(fn["FunctionName"]), "-"+envName)
				load, ok := loaders[name]
				if !ok {
					t.Errorf("%s/%s: function %s has no loader in this test", envName, id, name)
					continue
				}
				// WHEN its environment is loaded by the component's own Load
				// THEN it loads without error
				if err := load(environmentOf(fn["Environment"])); err != nil {
					t.Errorf("%s/%s (%s): %v", envName, id, name, err)
				}
			}
			// AND the scraper task's container environment loads too, by
			// the settings' own rules: the browser's, the profile's and the
			// consumer's checks (scraper/setup.Load) read only settings the
			// stack leaves at their defaults, which the scraper's own
			// tests load.
			for id, td := range resources(t, stack, "AWS::ECS::TaskDefinition") {
				for _, c := range td["ContainerDefinitions"].([]any) {
					env := environmentOf(c.(map[string]any)["Environment"])
					if _, err := scrapersettings.Load(env); err != nil {
						t.Errorf("%s/%s: %v", envName, id, err)
					}
				}
			}
		}
	}
}
