package sourcerules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkedTrees are the directories whose non-test Go files the rule holds
// for.
var checkedTrees = []string{"functions", "internal", "infra", "cmd", "devstack", "scraper", "test"}

// cdkAssembly are the only functions allowed to be longer: constructors
// of the CDK app that declare resources one after the other (infra/), as
// "file:function". Nothing outside infra/ belongs here.
var cdkAssembly = []string{
	"infra/alarms.go:NewAlarms",
	"infra/cache.go:NewCache",
	"infra/dashboard.go:newDashboard",
	"infra/functions.go:NewFunctions",
	"infra/queues.go:NewQueues",
	"infra/scraper_service.go:NewScraperService",
	"infra/storage.go:NewStorage",
}

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// function is one function of the source and its length in lines.
type function struct {
	where string // file:name, the file relative to the root
	lines int
}

// functions lists the functions (and package-level function literals) of
// the non-test Go files under dir.
func functions(t *testing.T, root, dir string) []function {
	t.Helper()
	var out []function
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		length := func(from, to token.Pos) int { return fset.Position(to).Line - fset.Position(from).Line + 1 }
		for _, decl := range f.Decls {
			if fn, ok := decl.(*ast.FuncDecl); ok && fn.Body != nil {
				out = append(out, function{where: filepath.ToSlash(rel) + ":" + fn.Name.Name, lines: length(fn.Pos(), fn.Body.End())})
				continue
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				if lit, ok := n.(*ast.FuncLit); ok {
					out = append(out, function{where: filepath.ToSlash(rel) + ":func literal", lines: length(lit.Pos(), lit.Body.End())})
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNoFunctionIsLongerThanSixtyLinesOutsideTheCDKAssembly(t *testing.T) {
	root := repoRoot(t)
	seen := 0
	exempted := map[string]bool{}
	// GIVEN every function of the checked trees
	for _, dir := range checkedTrees {
		for _, fn := range functions(t, root, dir) {
			seen++
			// WHEN it is longer than the rule allows
			if fn.lines <= MaxFunctionLines {
				continue
			}
			// THEN it is one of the CDK assembly's constructors
			if slices.Contains(cdkAssembly, fn.where) {
				exempted[fn.where] = true
				continue
			}
			t.Errorf("%s is %d lines; split it (at most %d)", fn.where, fn.lines, MaxFunctionLines)
		}
	}
	if seen < 100 {
		t.Fatalf("only %d functions found under %v: the walk misses the source", seen, checkedTrees)
	}
	// AND every exemption is still needed and lives in infra/
	for _, e := range cdkAssembly {
		if !strings.HasPrefix(e, "infra/") {
			t.Errorf("exemption %s is outside infra/: only the CDK assembly may be long", e)
		}
		if !exempted[e] {
			t.Errorf("exemption %s is no longer needed (or was renamed): remove it", e)
		}
	}
}
