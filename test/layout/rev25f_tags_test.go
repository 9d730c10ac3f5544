// Findings of issue 25's review 25f (fresh reviewer), fixed: the tests
// keep them fixed.

package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestRev25FTheLayoutRulesSeeEveryGoFile checks issue 25's deliverable 2:
// "A test over `go list` enforces these directions" for every package and
// its tests. What violated it: list() ran `go list` with the default build
// tags, so a file behind a tag (//go:build long, e2ereal, reviewfindings)
// was an IgnoredGoFile whose imports no layout rule saw. A file must now
// be seen (not ignored) under at least one of the rules' buildTagSets (one
// go list cannot see both scraper/storm_test.go, !long, and
// storm_long_test.go, long).
func TestRev25FTheLayoutRulesSeeEveryGoFile(t *testing.T) {
	ignoredIn := map[string]int{}
	for _, tags := range buildTagSets {
		cmd := exec.Command("go", "list", "-tags", tags, "-json", "./...")
		cmd.Dir = "../.."
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, stderr.String())
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var p struct {
				ImportPath     string
				IgnoredGoFiles []string
			}
			if err := dec.Decode(&p); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			for _, f := range p.IgnoredGoFiles {
				ignoredIn[strings.TrimPrefix(p.ImportPath, module)+"/"+f]++
			}
		}
	}
	for f, n := range ignoredIn {
		if n == len(buildTagSets) {
			t.Errorf("%s is behind a build tag none of the layout rules' go lists (tags %q) sets: no rule sees its imports", f, buildTagSets)
		}
	}
}
