package infra

import (
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
)

func stackTemplate(t *testing.T, stack awscdk.Stack) *map[string]any {
	t.Helper()
	return assertions.Template_FromStack(stack, nil).ToJSON()
}

// tagsOf reads a resource's rendered tags, a list of {Key, Value} or a map
// depending on the resource type.
func tagsOf(props map[string]any) map[string]string {
	out := map[string]string{}
	switch tags := props["Tags"].(type) {
	case []any:
		for _, t := range tags {
			kv, _ := t.(map[string]any)
			k, _ := kv["Key"].(string)
			v, _ := kv["Value"].(string)
			out[k] = v
		}
	case map[string]any:
		for k, v := range tags {
			s, _ := v.(string)
			out[k] = s
		}
	}
	return out
}

func TestEveryTaggableResourceCarriesTheCostAllocationTags(t *testing.T) {
	for _, name := range EnvironmentNames() {
		s := system(t, name)
		for _, stack := range []awscdk.Stack{s.Messaging.Stack, s.Pipeline.Stack} {
			// GIVEN every resource of the template, by logical id
			props := map[string]map[string]any{}
			raw := *stackTemplate(t, stack)
			for id, r := range raw["Resources"].(map[string]any) {
				p, _ := r.(map[string]any)["Properties"].(map[string]any)
				props[id] = p
			}
			checked := 0
			// WHEN a construct is a taggable CloudFormation resource
			for _, c := range *stack.Node().FindAll(constructs.ConstructOrder_PREORDER) {
				if !*awscdk.CfnResource_IsCfnResource(c) || !*awscdk.TagManager_IsTaggable(c) || slices.Contains(UntaggedResourceTypes, *c.(awscdk.CfnResource).CfnResourceType()) {
					continue
				}
				id := fmt.Sprint(stack.Resolve(stack.GetLogicalId(c.(awscdk.CfnElement))))
				tags := tagsOf(props[id])
				// THEN it is tagged with the project, the environment and a component
				if tags[TagProject] != ProjectName || tags[TagEnvironment] != name || tags[TagComponent] == "" {
					t.Errorf("%s %s (%s): tags %v", name, id, *c.Node().Path(), tags)
				}
				checked++
			}
			// AND no excluded type carries tags (cfn-lint refuses them)
			for id, r := range raw["Resources"].(map[string]any) {
				if slices.Contains(UntaggedResourceTypes, r.(map[string]any)["Type"].(string)) && props[id]["Tags"] != nil {
					t.Errorf("%s %s: tags on an untaggable type", name, id)
				}
			}
			if checked < 5 {
				t.Errorf("%s: only %d taggable resources found", *stack.StackName(), checked)
			}
		}
	}
}

func TestComponentsNameTheirPartOfTheSystem(t *testing.T) {
	// GIVEN the dev pipeline
	s := system(t, "dev")
	st := s.Pipeline.Stack
	raw := *stackTemplate(t, st)
	component := func(c constructs.IConstruct) string {
		id := fmt.Sprint(st.Resolve(st.GetLogicalId(c.Node().DefaultChild().(awscdk.CfnElement))))
		p, _ := raw["Resources"].(map[string]any)[id].(map[string]any)["Properties"].(map[string]any)
		return tagsOf(p)[TagComponent]
	}
	// THEN each part's resources carry its component (deeper tags win)
	for c, want := range map[constructs.IConstruct]string{
		s.Pipeline.Functions.API.Function: "api", s.Pipeline.Functions.Limiter.Function: "rate-limiter",
		s.Pipeline.Scraper.Cluster: "scraper", s.Pipeline.Cache.Key: "cache", s.Pipeline.Network.Vpc: "network",
		s.Pipeline.Storage.FallbackTable: "storage", s.Pipeline.Alarms.Alarms["fifo-backlog"]: "monitoring",
	} {
		if got := component(c); got != want {
			t.Errorf("%s: component %q, want %q", *c.Node().Path(), got, want)
		}
	}
	for _, q := range resources(t, s.Messaging.Stack, "AWS::SQS::Queue") {
		if got := tagsOf(q)[TagComponent]; got != "messaging" {
			t.Errorf("queue %v: component %q", q["QueueName"], got)
		}
	}
}
