// Findings of issue 25's review 25f (fresh reviewer), fixed: the tests
// keep them fixed.

package sourcerules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// zeroFallback is one `if x <= 0 { x = <default> }` in the source.
type zeroFallback struct{ where, text string }

// isZero reports whether e is the literal 0 or "".
func isZero(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && (lit.Value == "0" || lit.Value == `""`)
}

// isDefaultValue reports whether e is a written-out default: it holds a
// number, a time unit (time.Minute) or a Default… name.
func isDefaultValue(e ast.Expr) bool {
	found := false
	ast.Inspect(e, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			found = found || n.Kind != token.STRING // a string is a name (a group id: the contract finding), not a setting
		case *ast.IndexExpr:
			return false // read from somewhere (environ["AWS_DEFAULT_REGION"])
		case *ast.Ident:
			found = found || strings.HasPrefix(n.Name, "Default")
		case *ast.SelectorExpr:
			if x, ok := n.X.(*ast.Ident); ok && x.Name == "time" {
				found = true
			}
		case *ast.CallExpr:
			return false // a computed value (uuid.NewString()), not a default
		}
		return true
	})
	return found
}

// zeroFallbacks lists, in the non-test files under dir, every if whose
// condition is `x <= 0` or `x == 0`/`x == ""` and whose body only assigns
// a written-out default to that same x.
func zeroFallbacks(t *testing.T, root, dir string) []zeroFallback {
	t.Helper()
	var out []zeroFallback
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		src := func(n ast.Node) string {
			return string(mustRead(t, path)[fset.Position(n.Pos()).Offset:fset.Position(n.End()).Offset])
		}
		ast.Inspect(f, func(n ast.Node) bool {
			stmt, ok := n.(*ast.IfStmt)
			if !ok || len(stmt.Body.List) != 1 {
				return true
			}
			cond, ok := stmt.Cond.(*ast.BinaryExpr)
			if !ok || (cond.Op != token.LEQ && cond.Op != token.EQL) || !isZero(cond.Y) {
				return true
			}
			as, ok := stmt.Body.List[0].(*ast.AssignStmt)
			if !ok || as.Tok != token.ASSIGN || len(as.Lhs) != 1 || src(as.Lhs[0]) != src(cond.X) || !isDefaultValue(as.Rhs[0]) {
				return true
			}
			rel, _ := filepath.Rel(root, path)
			out = append(out, zeroFallback{where: filepath.ToSlash(rel) + ":" + itoa(fset.Position(stmt.Pos()).Line), text: src(as)})
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRev25FNoConstructorFallsBackToADefaultOfItsOwn checks issue 25's
// deliverable 3: "each setting's default lives in one place (its settings
// struct); constructors take complete settings". What violates it at HEAD
// (8c283c6): scraper.NewResults (scraper/results.go:84-92) writes
// RESULTS_FLUSH_EVERY's and RESULTS_MAX_RECORDS's defaults a second time
// (time.Minute, 1000; the settings struct says 60s and 1000) and MaxPending's
// (20 × MaxRecords) only there; redrive.Run's Hold (5 min), the rotator's
// ApplyWait/ApplyPoll and its probe's 10 s timeout, sqslimits.Backoff's 1 s
// base and the local front's 10 MB body are defaults of their constructors,
// not of a settings struct.
func TestRev25FNoConstructorFallsBackToADefaultOfItsOwn(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range []string{"functions", "internal", "scraper", "devstack", "cmd"} {
		for _, fb := range zeroFallbacks(t, root, dir) {
			t.Errorf("%s: zero-value fallback `%s`: the default belongs in the settings struct, the constructor should take complete settings", fb.where, fb.text)
		}
	}
}
