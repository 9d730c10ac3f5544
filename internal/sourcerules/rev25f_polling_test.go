package sourcerules

import (
	"go/ast"
	"go/token"
	"strings"
	"testing"
)

// TestRev25FTestsPollThroughTestWaitOnly checks issue 25's deliverable 5
// ("one shared wait helper for tests"; finding 6: hand-written
// deadline/sleep polling loops). What violates it: a `for <cond> &&
// time.Now().Before(deadline) { time.Sleep(…) }` loop whose body only
// sleeps is a hand-written poll: scraper/marks_test.go:295.
func TestRev25FTestsPollThroughTestWaitOnly(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range []string{"functions", "internal", "scraper", "devstack", "cmd", "infra", "test"} {
		goFiles(t, root, dir, true, func(rel string, fset *token.FileSet, f *ast.File) {
			if !strings.HasSuffix(rel, "_test.go") {
				return
			}
			ast.Inspect(f, func(n ast.Node) bool {
				loop, ok := n.(*ast.ForStmt)
				if !ok || loop.Cond == nil || len(loop.Body.List) != 1 {
					return true
				}
				cond := callsIn(loop.Cond)
				if !strings.Contains(cond, "Before") && !strings.Contains(cond, "Since") {
					return true
				}
				if strings.Contains(callsIn(loop.Body.List[0]), "Sleep") {
					t.Errorf("%s:%d: a hand-written deadline/sleep polling loop; use test/wait", rel, fset.Position(loop.Pos()).Line)
				}
				return true
			})
		})
	}
}

// callsIn names the selector calls in n ("Now Before Sleep").
func callsIn(n ast.Node) string {
	var names []string
	ast.Inspect(n, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if sel, ok := c.Fun.(*ast.SelectorExpr); ok {
				names = append(names, sel.Sel.Name)
			}
		}
		return true
	})
	return strings.Join(names, " ")
}
