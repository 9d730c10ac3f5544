package sourcerules

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRev25FDocsLinkOnlyToFilesInTheRepository checks issue 25's
// deliverable 5: "docs that point only at files in the repository". What
// violates it: docs/operations.md:201 links "docs/runbook.md", which from
// docs/ resolves to docs/docs/runbook.md, not a file of the repository.
func TestRev25FDocsLinkOnlyToFilesInTheRepository(t *testing.T) {
	root := repoRoot(t)
	link := regexp.MustCompile(`\]\(([^)#\s]+)`)
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range link.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				resolved := filepath.Join(filepath.Dir(doc), target)
				rel, _ := filepath.Rel(root, resolved)
				if _, err := os.Stat(resolved); err != nil || strings.HasPrefix(rel, "..") {
					docRel, _ := filepath.Rel(root, doc)
					t.Errorf("%s:%d links %s, which resolves to %s: not a file of the repository", docRel, i+1, target, rel)
				}
			}
		}
	}
}
