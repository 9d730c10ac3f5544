package scraper_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/internal/browser"
	scrapersetup "github.com/huntaze/message-pipeline/scraper/setup"
	"github.com/huntaze/message-pipeline/test/harness"
)

// The image cannot be built here (no Docker engine); this test keeps the
// Dockerfile consistent with the code and the pins it must match.
func TestDockerfileMatchesTheCodeAndThePins(t *testing.T) {
	root := harness.RepoRoot(t)
	df := read(t, filepath.Join(root, "scraper", "Dockerfile"))
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal([]byte(read(t, filepath.Join(root, "package.json"))), &pkg); err != nil {
		t.Fatal(err)
	}
	gomod := read(t, filepath.Join(root, "go.mod"))
	driver := pkg.DevDependencies["playwright-core"]

	checks := map[string]bool{
		"driver pinned like package.json (" + driver + ")": strings.Contains(df, "npm pack playwright-core@"+driver) && strings.Contains(df, "playwright-core-"+driver+".tgz"),
		"playwright-go matches the driver version":         strings.Contains(gomod, "playwright-community/playwright-go v0."+playwrightGoMinor(driver)+"."),
		"node 22 for the driver, like package.json":        strings.Contains(df, "FROM --platform=linux/amd64 node:22-") && strings.HasPrefix(pkg.DevDependencies["node"], "22."),
		"chromium path is the code's default":              strings.Contains(df, "CHROMIUM_PATH="+browser.DefaultChromiumPath),
		"driver path is the settings default":              strings.Contains(df, "PLAYWRIGHT_DRIVER_PATH=/opt/playwright-driver") && scrapersetup.Defaults().DriverDir == "/opt/playwright-driver",
		"driver folder holds package/ and node":            strings.Contains(df, "-C /opt/playwright-driver") && strings.Contains(df, "/opt/playwright-driver/node"),
		"sandbox setting is the settings default":          strings.Contains(df, "CHROMIUM_SANDBOX="+scrapersetup.Defaults().ChromiumSandbox),
		"builds the scraper command":                       strings.Contains(df, "./scraper/cmd/scraper"),
		"go version of go.mod":                             strings.Contains(df, "golang:"+goVersion(gomod)+"-"),
		"x86_64 for Fargate Spot":                          strings.Count(df, "--platform=linux/amd64") == 3 && strings.Contains(df, "GOARCH=amd64"),
		"non-root user":                                    regexp.MustCompile(`(?m)^USER scraper$`).MatchString(df),
		"init forwards signals":                            strings.Contains(df, `ENTRYPOINT ["/usr/bin/tini", "--"`),
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("Dockerfile: %s", what)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "scraper", "cmd", "scraper", "main.go")); err != nil {
		t.Errorf("the command the Dockerfile builds is missing: %v", err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// playwrightGoMinor maps a driver version to playwright-go's minor version:
// 1.57.0 → 5700.
func playwrightGoMinor(driver string) string {
	parts := strings.Split(driver, ".")
	if len(parts) != 3 {
		return "?"
	}
	return parts[1] + fmt.Sprintf("%02s", parts[2])
}

// goVersion returns "1.26" from "go 1.26.0".
func goVersion(gomod string) string {
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(gomod)
	if m == nil {
		return "?"
	}
	return m[1]
}
