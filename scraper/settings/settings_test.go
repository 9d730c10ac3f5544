package settings_test

import (
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
	"github.com/huntaze/message-pipeline/scraper/settings"
)

// profileErrors are Parse's errors that name a site profile setting.
func profileErrors(environ map[string]string) []string {
	_, errs := settings.Parse(environ)
	var out []string
	for _, err := range errs {
		if strings.Contains(err.Error(), "SITE_PROFILE") {
			out = append(out, err.Error())
		}
	}
	return out
}

func TestSiteProfile_ABuiltInNameOrAFileNeverBoth(t *testing.T) {
	// GIVEN no profile setting, a built-in name or a file alone THEN no
	// profile error (the default is the document-per-chat profile)
	for _, env := range []map[string]string{
		{},
		{"SITE_PROFILE": "onlyfans"},
		{"SITE_PROFILE": "onlyfans-spa"},
		{"SITE_PROFILE_FILE": "/etc/site.json"},
	} {
		if errs := profileErrors(env); len(errs) > 0 {
			t.Errorf("%v: %v", env, errs)
		}
	}
	if d := settings.Defaults(); d.SiteProfile != profiles.Default || d.SiteProfileFile != "" {
		t.Errorf("defaults %q %q: want the built-in %s and no file", d.SiteProfile, d.SiteProfileFile, profiles.Default)
	}
	// GIVEN an unknown name THEN the error names the field and the known names
	errs := profileErrors(map[string]string{"SITE_PROFILE": "onlyfans-sap"})
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "SITE_PROFILE:") || !strings.Contains(errs[0], "onlyfans-spa") {
		t.Errorf("unknown name: %v", errs)
	}
	// GIVEN both THEN one error naming both (which one wins is not left
	// to a guess)
	errs = profileErrors(map[string]string{"SITE_PROFILE": "onlyfans-spa", "SITE_PROFILE_FILE": "/etc/site.json"})
	if len(errs) != 1 || !strings.Contains(errs[0], "SITE_PROFILE ") || !strings.Contains(errs[0], "SITE_PROFILE_FILE") {
		t.Errorf("both set: %v", errs)
	}
}

func TestSiteProfile_RendersAndParsesBack(t *testing.T) {
	// GIVEN the default profile THEN the rendered environment leaves it
	// out (a file may then be given on top of it)
	if env := settings.Defaults().Env(); env["SITE_PROFILE"] != "" {
		t.Errorf("default rendered: %v", env)
	}
	// GIVEN settings naming the SPA profile WHEN rendered as the task's
	// environment and parsed back THEN the name survives
	s := settings.Defaults()
	s.SiteProfile = profiles.SPA
	env := s.Env()
	if env["SITE_PROFILE"] != "onlyfans-spa" {
		t.Fatalf("rendered %v", env)
	}
	if got, _ := settings.Parse(env); got.SiteProfile != "onlyfans-spa" {
		t.Errorf("parsed back %q", got.SiteProfile)
	}
}

// errorsNaming is what settings.Parse reports about environ that names
// setting.
func errorsNaming(environ map[string]string, setting string) []string {
	_, errs := settings.Parse(environ)
	var out []string
	for _, err := range errs {
		if strings.Contains(err.Error(), setting) {
			out = append(out, err.Error())
		}
	}
	return out
}

func TestAnsweredProofPatience_StaysUnderTheShutdownDeadline(t *testing.T) {
	named := func(environ map[string]string) []string { return errorsNaming(environ, "ANSWERED_PROOF_PATIENCE") }
	// GIVEN the defaults THEN no error (a task stopped while it tries a
	// proof gets to the end of the patience)
	if errs := named(map[string]string{}); len(errs) > 0 {
		t.Errorf("defaults: %v", errs)
	}
	// GIVEN a patience at or past the deadline THEN one error naming both
	for _, env := range []map[string]string{
		{"ANSWERED_PROOF_PATIENCE": "100s"},
		{"ANSWERED_PROOF_PATIENCE": "30s", "SHUTDOWN_DEADLINE": "20s"},
	} {
		if errs := named(env); len(errs) != 1 || !strings.Contains(errs[0], "SHUTDOWN_DEADLINE") {
			t.Errorf("%v: %v", env, errs)
		}
	}
}

func TestEmptyChatPatience_NeverExceedsTheChatFaultPatience(t *testing.T) {
	named := func(environ map[string]string) []string { return errorsNaming(environ, "EMPTY_CHAT_PATIENCE") }
	// GIVEN the defaults (5 min, 10 min) THEN no error
	if errs := named(map[string]string{}); len(errs) > 0 {
		t.Errorf("defaults: %v", errs)
	}
	// GIVEN an empty chat patience past the chat fault patience THEN one
	// error naming both (the empty chat would count as a failure first)
	errs := named(map[string]string{"EMPTY_CHAT_PATIENCE": "11m"})
	if len(errs) != 1 || !strings.Contains(errs[0], "CHAT_FAULT_PATIENCE") {
		t.Errorf("11m: %v", errs)
	}
}
