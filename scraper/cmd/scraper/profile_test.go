package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
	"github.com/huntaze/message-pipeline/scraper/setup"
)

// The site profile the settings choose reaches the sender (setup.Load and
// setup.Sender; here because scraper/setup's own tests would link the
// browser without driving one, test/layout).

// profileEnviron is a task environment that loads, with extra on top.
func profileEnviron(extra map[string]string) map[string]string {
	env := map[string]string{
		"WORKFLOWS_QUEUE_URL": "http://127.0.0.1:1/000000000000/workflows", "WORKFLOWS_DLQ_URL": "http://127.0.0.1:1/000000000000/workflows-dlq",
		"RESULTS_BUCKET": "results", "ATTEMPTS_TABLE": "attempts", "CREDENTIALS_FILE": "/tmp/creds.json",
		"REDIS_ADDR": "127.0.0.1:1", "REDIS_TLS": "false",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func TestLoad_TheSenderGetsTheProfileTheSettingsChoose(t *testing.T) {
	// GIVEN no profile setting THEN the document-per-chat default
	s, err := setup.Load(profileEnviron(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := setup.Sender(s); err != nil || cfg.Profile.InApp != nil {
		t.Errorf("default: inApp %v, %v; want a document per chat", cfg.Profile.InApp != nil, err)
	}
	// GIVEN SITE_PROFILE=onlyfans-spa THEN the single-page app's profile
	s, err = setup.Load(profileEnviron(map[string]string{"SITE_PROFILE": profiles.SPA}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := setup.Sender(s); err != nil || cfg.Profile.InApp == nil {
		t.Errorf("%s: inApp %v, %v", profiles.SPA, cfg.Profile.InApp != nil, err)
	}
	// GIVEN a file THEN the file's profile
	b, _ := profiles.Lookup(profiles.SPA)
	file := filepath.Join(t.TempDir(), "site.json")
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), `"onlyfans-web-spa"`, `"from-the-file"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = setup.Load(profileEnviron(map[string]string{"SITE_PROFILE_FILE": file}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := setup.Sender(s); err != nil || cfg.Profile.Name != "from-the-file" {
		t.Errorf("file: %q, %v", cfg.Profile.Name, err)
	}
	// AND a Sender given a file and another name takes the file
	both := s
	both.SiteProfile = profiles.SPA
	if cfg, err := setup.Sender(both); err != nil || cfg.Profile.Name != "from-the-file" {
		t.Errorf("file over name: %q, %v", cfg.Profile.Name, err)
	}
}

func TestLoad_AProfileErrorNamesItsFieldOnce(t *testing.T) {
	// GIVEN each wrong profile setting THEN Load names it, once
	for want, extra := range map[string]map[string]string{
		"SITE_PROFILE: unknown built-in site profile": {"SITE_PROFILE": "spa"},
		"set at most one of SITE_PROFILE":             {"SITE_PROFILE": profiles.SPA, "SITE_PROFILE_FILE": "/no/such.json"},
		"SITE_PROFILE_FILE: site profile":             {"SITE_PROFILE_FILE": "/no/such.json"},
	} {
		_, err := setup.Load(profileEnviron(extra))
		if err == nil || strings.Count(err.Error(), want) != 1 {
			t.Errorf("%v: %v; want %q once", extra, err, want)
		}
	}
}
