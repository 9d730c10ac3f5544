package sourcerules

import "testing"

// TestRev25FNoFunctionInTestHelpersIsLongerThanSixtyLines checks issue 25's
// deliverable 5: "no function over 60 lines outside declarative CDK
// assembly". What violates it: internal/sourcerules scans only
// functions/, internal/, infra/, cmd/, devstack/ and scraper/, so the
// non-test Go of test/ (developer programs and helpers) is never checked:
// test/cmd/benchreport/main.go:20 main is 127 lines, task.go:58
// measureTask 91, calls.go:96 measureCalls 78, api.go:91 measureAPI 77,
// test/cmd/apiserver/main.go:39 main 71.
func TestRev25FNoFunctionInTestHelpersIsLongerThanSixtyLines(t *testing.T) {
	root := repoRoot(t)
	for _, fn := range functions(t, root, "test") {
		if fn.lines > MaxFunctionLines {
			t.Errorf("%s is %d lines (at most %d), and the rule's checkedTrees do not include test/", fn.where, fn.lines, MaxFunctionLines)
		}
	}
}
