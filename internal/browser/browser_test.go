package browser_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/test/harness"
)

func TestChromiumStartsWithoutTheTasksCredentialsOrSettings(t *testing.T) {
	// GIVEN the scraper's environment as ECS gives it: the task's
	// credentials URI, AWS settings, a session-looking variable
	for k, v := range map[string]string{
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/secret-uuid", "AWS_REGION": "eu-west-1",
		"AWS_SECRET_ACCESS_KEY": "secret-key", "SESSION_SECRET_PREFIX": "huntaze/dev/sessions/", "REDIS_AUTH_TOKEN": "secret-token",
	} {
		t.Setenv(k, v)
	}
	marker := "--user-agent=env-test-" + filepath.Base(t.TempDir())
	// WHEN Chromium starts
	s, err := browser.Start(browser.Options{DriverDir: harness.DriverDir(t), ExtraArgs: []string{marker}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// THEN no Chromium process (browser, renderers, utilities) holds any
	// of it
	procs := 0
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !strings.Contains(string(cmd), "chromium") {
			continue
		}
		env, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		isOurs := strings.Contains(string(cmd), marker)
		for _, kv := range strings.Split(string(env), "\x00") {
			if isOurs && (strings.HasPrefix(kv, "AWS_") || strings.Contains(kv, "secret")) {
				t.Errorf("chromium pid %s has %s", filepath.Base(d), kv)
			}
		}
		if isOurs {
			procs++
		}
	}
	if procs == 0 {
		t.Fatal("found no chromium process of this test")
	}
	// AND what it keeps is only the list
	env := browser.BrowserEnv([]string{"PATH=/usr/bin", "AWS_REGION=x", "HOME=/home/scraper", "CREDENTIALS_FILE=/x"})
	if len(env) != 2 || env["PATH"] != "/usr/bin" || env["HOME"] != "/home/scraper" {
		t.Fatalf("browser env %v", env)
	}
}

func TestTheSandboxIsUsedWhereThePlatformAllowsItAndRequiredWhenOn(t *testing.T) {
	// GIVEN this machine, where the tests run as root (Chromium refuses
	// its sandbox there) or as a user with or without user namespaces
	s, err := browser.Start(browser.Options{DriverDir: harness.DriverDir(t), Sandbox: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// THEN "auto" starts either way and says which it got, with the reason
	if !s.Sandboxed && s.SandboxError == nil {
		t.Fatal("unsandboxed without a reason")
	}
	t.Logf("sandboxed: %t (%v)", s.Sandboxed, s.SandboxError)
	// AND "on" fails where "auto" had to do without
	on, err := browser.Start(browser.Options{DriverDir: harness.DriverDir(t), Sandbox: "on"})
	if s.Sandboxed != (err == nil) {
		t.Fatalf("on: %v (auto got the sandbox: %t)", err, s.Sandboxed)
	}
	if on != nil {
		_ = on.Close()
	}
	if err := (browser.Options{Sandbox: "maybe"}).Validate(); err == nil || !strings.Contains(err.Error(), "CHROMIUM_SANDBOX") {
		t.Fatalf("validate: %v", err)
	}
}

func TestLinkLocalURLsMatchEveryFormChromiumWrites(t *testing.T) {
	for _, u := range []string{"http://169.254.170.2/v2/credentials/x", "http://169.254.169.254/latest/meta-data/", "https://169.254.169.254:443/", "http://user@169.254.170.2/",
		"http://[fd00:ec2::254]/latest", "http://[::ffff:a9fe:a9fe]/", "ws://169.254.170.2/x", "http://169.254.1.1"} {
		if !browser.LinkLocalURL.MatchString(u) {
			t.Errorf("%s not matched", u)
		}
	}
	for _, u := range []string{"https://onlyfans.com/my/chats", "http://127.0.0.1:8080/", "https://169.254.170.2.example.com/", "http://10.169.254.1/"} {
		if browser.LinkLocalURL.MatchString(u) {
			t.Errorf("%s matched", u)
		}
	}
}

func TestLinkLocalNamesAreKnownWithoutAskingDNS(t *testing.T) {
	for host, want := range map[string]bool{
		"169.254.170.2.nip.io": true, "169-254-170-2.nip.io": true, "x.169.254.169.254.sslip.io": true,
		"a9feaa02.nip.io": true, "A9FEA9FE.sslip.io.": true, "instance-data": true, "metadata.google.internal": true,
		"onlyfans.com": false, "10.1.2.3.nip.io": false, "1169.254.1.1.example": false, "cdn.a9fe.example": false,
	} {
		if got := browser.LinkLocalName(host); got != want {
			t.Errorf("LinkLocalName(%q) = %t, want %t", host, got, want)
		}
	}
	for addr, want := range map[string]bool{"169.254.170.2": true, "::ffff:169.254.169.254": true, "fd00:ec2::254": true, "fe80::1": true, "127.0.0.1": false, "10.0.0.1": false} {
		// An address literal is decided without a lookup.
		if got := browser.ResolvesToLinkLocal(context.Background(), nil, addr, time.Second); got != want {
			t.Errorf("ResolvesToLinkLocal(%q) = %t, want %t", addr, got, want)
		}
	}
}
