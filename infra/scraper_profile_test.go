package infra

import (
	"maps"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// siteProfileIn asserts the scraper task's container environment names
// the built-in site profile want.
func siteProfileIn(stack awscdk.Stack, want string) {
	assertions.Template_FromStack(stack, nil).HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
		"ContainerDefinitions": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"Environment": assertions.Match_ArrayWith(&[]any{map[string]any{"Name": "SITE_PROFILE", "Value": want}}),
		})}),
	})
}

func TestScraperTask_RunsTheSiteProfileItsEnvironmentNames(t *testing.T) {
	// GIVEN every environment THEN its task runs its profile, today the
	// document per chat everywhere: the scraper's default, which the
	// rendered environment leaves out as it does every default (the image
	// ships no profile file: the profiles are built into the binary)
	for _, name := range EnvironmentNames() {
		env, err := LookupEnvironment(name)
		if err != nil {
			t.Fatal(err)
		}
		if env.ScraperProfile != profiles.Default {
			t.Errorf("%s runs %q; changing an environment's profile is a decision to make here on purpose", name, env.ScraperProfile)
		}
		for id, td := range resources(t, system(t, name).Pipeline.Stack, "AWS::ECS::TaskDefinition") {
			for _, c := range td["ContainerDefinitions"].([]any) {
				s, err := scrapersettings.Load(environmentOf(c.(map[string]any)["Environment"]))
				if err != nil || s.SiteProfile != env.ScraperProfile || s.SiteProfileFile != "" {
					t.Errorf("%s/%s: runs %q (file %q), %v; want %s", name, id, s.SiteProfile, s.SiteProfileFile, err, env.ScraperProfile)
				}
			}
		}
	}
	// GIVEN an environment that picks the single-page app's profile
	env, err := LookupEnvironment("dev")
	if err != nil {
		t.Fatal(err)
	}
	env.ScraperProfile = profiles.SPA
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"aws:cdk:bundling-stacks": &[]*string{}}})
	// THEN its task runs it, and no file is named
	sys := NewSystem(app, env)
	siteProfileIn(sys.Pipeline.Stack, profiles.SPA)
	for id, td := range resources(t, sys.Pipeline.Stack, "AWS::ECS::TaskDefinition") {
		for _, c := range td["ContainerDefinitions"].([]any) {
			if v, ok := environmentOf(c.(map[string]any)["Environment"])["SITE_PROFILE_FILE"]; ok {
				t.Errorf("%s: SITE_PROFILE_FILE=%s beside SITE_PROFILE", id, v)
			}
		}
	}
}

func TestEnvironments_AnUnknownScraperProfileFailsSynth(t *testing.T) {
	// GIVEN an environment naming a profile the scraper does not have
	envs := maps.Clone(environments)
	staging := envs["staging"]
	staging.ScraperProfile = "onlyfans-sap"
	envs["staging"] = staging
	// THEN the environments do not validate, the field and the known names said
	err := ValidateEnvironments(envs)
	if err == nil || !strings.Contains(err.Error(), "environment staging: ScraperProfile") || !strings.Contains(err.Error(), profiles.SPA) {
		t.Errorf("got %v", err)
	}
}
