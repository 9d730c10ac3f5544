package sourcerules

import (
	"go/ast"
	"go/token"
	"regexp"
	"strings"
	"testing"
)

// TestRev25FGroupAndDeduplicationIDsAreWrittenOnlyByTheContract checks
// issue 25's deliverable 4: "one package defines the messages on both
// queues (body, group id, dedup id, every attribute name …) and is used by
// the API, the limiter, the scraper, redrive and replay". What violates it
// at HEAD: group ids written as literals outside internal/message — the
// limiter's DLQ move (functions/ratelimiter/handler/handler.go:275
// "unknown"), the scraper's (scraper/consumer.go:383 "unknown"), redrive's
// (internal/redrive/redrive.go:160 "redriven"); redrive's own dedup id
// scheme sha256("redrive:"+id) (redrive.go:162); and the limiter reads the
// system attributes by string literal (handler.go:239 "MessageGroupId",
// :269 "MessageDeduplicationId") where the scraper and redrive use the
// sqstypes constants.
func TestRev25FGroupAndDeduplicationIDsAreWrittenOnlyByTheContract(t *testing.T) {
	root := repoRoot(t)
	idName := regexp.MustCompile(`(?i)^(group|groupid|dedup|dedupid|deduplicationid|messagegroupid|messagededuplicationid)$`)
	for _, dir := range []string{"functions", "internal", "scraper", "cmd"} {
		goFiles(t, root, dir, false, func(rel string, fset *token.FileSet, f *ast.File) {
			if strings.HasPrefix(rel, "internal/message/") {
				return
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.AssignStmt:
					for i, l := range n.Lhs {
						id, ok := l.(*ast.Ident)
						if !ok || i >= len(n.Rhs) || !idName.MatchString(id.Name) {
							continue
						}
						if lit, ok := n.Rhs[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							t.Errorf("%s:%d: %s = %s: a group or dedup id written outside the queue contract", rel, fset.Position(n.Pos()).Line, id.Name, lit.Value)
						}
					}
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Sum256" && strings.Contains(exprText(n), `"redrive:"`) {
						t.Errorf("%s:%d: a deduplication id scheme of its own (%s), not the contract's", rel, fset.Position(n.Pos()).Line, exprText(n))
					}
				case *ast.IndexExpr:
					if lit, ok := n.Index.(*ast.BasicLit); ok && (lit.Value == `"MessageGroupId"` || lit.Value == `"MessageDeduplicationId"`) {
						t.Errorf("%s:%d: system attribute %s read by string literal", rel, fset.Position(n.Pos()).Line, lit.Value)
					}
				}
				return true
			})
		})
	}
}

// exprText is a rough rendering of a call's literal arguments.
func exprText(n ast.Node) string {
	var b strings.Builder
	ast.Inspect(n, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok {
			b.WriteString(lit.Value)
		}
		return true
	})
	return "Sum256(" + b.String() + "+…)"
}
