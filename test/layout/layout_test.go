// Package layout checks which way the repository's packages depend on
// each other (go list), so the layering cannot drift back:
//   - internal/ holds the shared libraries: nothing in it imports the
//     components (functions/, scraper/), the stack (infra/), the local
//     assembly (devstack/), a command (cmd/) or a test helper (test/);
//   - its tests use the test helpers and the emulators, never a component;
//   - the shipped components (functions/, scraper/) and the stack (infra/)
//     import nothing from the local assembly (devstack/), cmd/ or test/;
//   - no command (cmd/, and each component's or the stack's cmd/; the
//     developer programs in test/cmd are test helpers) imports
//     anything from test/;
//   - the tests' wait helper (test/wait) links only the standard library;
//   - a package's tests link the browser (playwright-go) only if they drive
//     one in process (browserTests, exactly).
package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/huntaze/message-pipeline/"

const playwright = "github.com/playwright-community/playwright-go"

// browserTests are exactly the packages whose tests link the browser: the
// browser's own and the sender's, the scraper's (which drive Chromium in
// process), the scraper's main (the binary that drives it, which its tests
// run) and the browser harness. The stack (infra) and the local assembly
// (devstack) take the scraper's settings from scraper/settings, which links
// no browser; the e2e tests and devstack drive Chromium only through the
// scraper's binary, built from source, and link nothing of it.
var browserTests = []string{"internal/browser", "scraper", "scraper/onlyfans", "scraper/cmd/scraper", "test/browserharness"}

type pkg struct {
	ImportPath string
	ForTest    string
	Deps       []string
	Standard   bool
}

// buildTagSets are the tag sets the rules list the module with: every
// build tag a file of the module is behind (long: the storm test; e2ereal:
// the end-to-end test against AWS; reviewfindings: open review findings)
// and none, since a file can be behind a negated tag (scraper/storm_test.go
// is !long): together they see every Go file's imports.
var buildTagSets = []string{"", "long,e2ereal,reviewfindings"}

// list is `go list -deps -test -json ./...` under each of buildTagSets:
// every package and test binary of the module, with its transitive
// dependencies under any of them (a package listed under two tag sets is
// one, with the union of its dependencies).
func list(t *testing.T) []pkg {
	t.Helper()
	var pkgs []pkg
	index := map[string]int{}
	for _, tags := range buildTagSets {
		for _, p := range listWith(t, tags) {
			key := p.ImportPath + "\x00" + p.ForTest
			i, seen := index[key]
			if !seen {
				index[key] = len(pkgs)
				pkgs = append(pkgs, p)
				continue
			}
			for _, d := range p.Deps {
				if !slices.Contains(pkgs[i].Deps, d) {
					pkgs[i].Deps = append(pkgs[i].Deps, d)
				}
			}
		}
	}
	return pkgs
}

func listWith(t *testing.T, tags string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", tags, "-deps", "-test", "-json", "./...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -tags %q: %v\n%s", tags, err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(p.ImportPath, module) {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages of the module", len(pkgs))
	}
	return pkgs
}

// rel is a module path relative to the module ("internal/ratelimit"),
// without a test variant's " [x.test]".
func rel(path string) string {
	path, _, _ = strings.Cut(path, " ")
	return strings.TrimPrefix(path, module)
}

func under(path string, dirs ...string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

func moduleDeps(p pkg) []string {
	var out []string
	for _, d := range p.Deps {
		if strings.HasPrefix(d, module) {
			out = append(out, rel(d))
		}
	}
	return out
}

func TestInternalImportsNoComponentStackAssemblyCommandOrTestHelper(t *testing.T) {
	for _, p := range list(t) {
		path := rel(p.ImportPath)
		if p.ForTest != "" || strings.HasSuffix(path, ".test") || !under(path, "internal") {
			continue
		}
		for _, d := range moduleDeps(p) {
			if under(d, "functions", "scraper", "infra", "devstack", "cmd", "test") {
				t.Errorf("%s imports %s", path, d)
			}
		}
	}
}

func TestInternalTestsUseNoComponent(t *testing.T) {
	for _, p := range list(t) {
		path := rel(p.ImportPath)
		if !strings.HasSuffix(path, ".test") || !under(strings.TrimSuffix(path, ".test"), "internal") {
			continue
		}
		for _, d := range moduleDeps(p) {
			if under(d, "functions", "scraper", "infra", "cmd") || d == "devstack" || under(d, "devstack/lambdalocal") {
				t.Errorf("the tests of %s link %s", strings.TrimSuffix(path, ".test"), d)
			}
		}
	}
}

func TestShippedCodeImportsNoAssemblyCommandOrTestHelper(t *testing.T) {
	for _, p := range list(t) {
		path := rel(p.ImportPath)
		if p.ForTest != "" || strings.HasSuffix(path, ".test") || !under(path, "functions", "scraper", "infra") {
			continue
		}
		for _, d := range moduleDeps(p) {
			if under(d, "devstack", "cmd", "test") {
				t.Errorf("%s imports %s", path, d)
			}
		}
	}
}

func TestCommandsImportNothingFromTest(t *testing.T) {
	for _, p := range list(t) {
		path := rel(p.ImportPath)
		if p.ForTest != "" || strings.HasSuffix(path, ".test") || under(path, "test") || !(under(path, "cmd") || strings.Contains(path, "/cmd/")) {
			continue
		}
		for _, d := range moduleDeps(p) {
			if under(d, "test") {
				t.Errorf("%s imports %s", path, d)
			}
		}
	}
}

func TestOnlyTestsThatDriveABrowserLinkOne(t *testing.T) {
	linked := map[string]bool{}
	for _, p := range list(t) {
		path := rel(p.ImportPath)
		if !strings.HasSuffix(path, ".test") {
			continue
		}
		owner := strings.TrimSuffix(path, ".test")
		if slices.ContainsFunc(p.Deps, func(d string) bool { return rel(d) == playwright || strings.HasPrefix(d, playwright+" ") }) {
			linked[owner] = true
			if !slices.Contains(browserTests, owner) {
				t.Errorf("the tests of %s link playwright-go but drive no browser", owner)
			}
		}
	}
	// The list is exact, and so the check sees what it should: each listed
	// package's tests link the browser (the browser's own first of all).
	for _, owner := range browserTests {
		if !linked[owner] {
			t.Errorf("the tests of %s do not link playwright-go: take it off browserTests, or the check reads go list wrong", owner)
		}
	}
}

// test/wait is the tests' one wait helper, for every package's tests: it
// must stay free of the module's other packages (so no test links a
// component, an emulator or the browser through it).
func TestTheWaitHelperLinksOnlyTheStandardLibrary(t *testing.T) {
	found := false
	for _, p := range list(t) {
		if rel(p.ImportPath) != "test/wait" || p.ForTest != "" {
			continue
		}
		found = true
		for _, d := range p.Deps {
			if strings.Contains(strings.Split(d, "/")[0], ".") {
				t.Errorf("test/wait links %s", d)
			}
		}
	}
	if !found {
		t.Fatal("go list does not show test/wait")
	}
}

// lambdaBootstraps are the Lambdas whose bootstrap must stay within 15 MB
// (issue 27). `make bench` builds them for arm64 and reports the sizes; a
// test cannot (a cold arm64 build of one took 100 s here), so this one
// keeps out what made them 20 to 28 MB.
var lambdaBootstraps = []string{"functions/api", "functions/ratelimiter", "functions/replay"}

// heavyForALambda are those packages, with what a Lambda uses instead.
var heavyForALambda = map[string]string{
	"github.com/go-playground/validator/v10":              "its MethodByName makes the linker keep every exported method of every type (about half a bootstrap); internal/message writes its rules out",
	"github.com/aws/aws-sdk-go-v2/config":                 "it links the shared-file, SSO, STS and IMDS credential chains; internal/awsenv reads what Lambda puts in the environment",
	"github.com/aws/aws-sdk-go-v2/service/ssm":            "1.2 to 1.5 MB for one GetParameter, by the import alone; internal/awsjson.Parameter",
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager": "1.2 to 1.5 MB for one GetSecretValue, by the import alone; internal/awsjson.Secrets and internal/redisclient",
}

func TestLambdaBootstrapsLinkNoneOfWhatMadeThemLarge(t *testing.T) {
	seen := 0
	for _, p := range list(t) {
		path := rel(p.ImportPath)
		if p.ForTest != "" || !slices.Contains(lambdaBootstraps, path) {
			continue
		}
		seen++
		for _, d := range p.Deps {
			if why, heavy := heavyForALambda[d]; heavy {
				t.Errorf("%s links %s: %s", path, d, why)
			}
		}
	}
	if seen != len(lambdaBootstraps) {
		t.Fatalf("found %d of the %d Lambdas in go list", seen, len(lambdaBootstraps))
	}
}
