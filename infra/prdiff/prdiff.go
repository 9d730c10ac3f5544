// Package prdiff reviews a change to the CDK app the way `cdk deploy` would
// apply it, offline: for every stack of two synthesized cloud assemblies
// (base and head) it runs the CDK CLI's own diff,
//
//	cdk diff --app <head assembly> --template <base template> <stack>
//
// which shows resources, DeletionPolicy/UpdateReplacePolicy, DependsOn,
// outputs, replacements, IAM and security-group changes. It adds only what
// the CLI does not do:
//   - stacks present in one assembly only (a new stack is diffed against an
//     empty template; a stack gone from head is reported as deleted whole);
//   - a verdict: the CLI exits 0 whatever it shows (--fail exits 1 on any
//     difference, even a description), so Scan reads its report for what
//     would replace or delete something, drop an output, or change what
//     CloudFormation retains, and the command exits with ExitDestructive.
package prdiff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// ExitDestructive is the exit status of a diff with findings (1 is an
// error of the tool or the CLI).
const ExitDestructive = 3

// Finding is one change a reviewer must approve explicitly.
type Finding struct {
	Stack string
	What  string
}

func (f Finding) String() string { return f.Stack + ": " + f.What }

// Options of Run.
type Options struct {
	CDK        string   // the CDK CLI (node_modules/.bin/cdk)
	Base, Head string   // cloud assembly directories (cdk synth -o)
	Env        []string // the CLI's environment; nil: this process's
	Out        io.Writer
}

// The CLI's impact words at the end of a resource line (cloudformation-diff).
var (
	// "[~] AWS::DynamoDB::Table Fallback Fallback36519D20 replace": type,
	// construct path (when the template has CDK metadata), logical id.
	resourceLine = regexp.MustCompile(`^\[([-+~])\] (\S+::\S+::\S+) (\S+)(?: \S+)*?(?: (replace|may be replaced|destroy|orphan))?\s*$`)
	outputGone   = regexp.MustCompile(`^\[-\] Output (\S+?):`)
	policyChange = regexp.MustCompile(`^[\s│├└─]*\[[-+~]\] (DeletionPolicy|UpdateReplacePolicy)\s*$`)
)

// Scan lists the findings of one stack's `cdk diff --no-color` report.
func Scan(stack, report string) []Finding {
	var out []Finding
	var resource string
	for _, line := range strings.Split(report, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := resourceLine.FindStringSubmatch(line); m != nil {
			resource = m[2] + " " + m[3]
			switch m[4] {
			case "replace":
				out = append(out, Finding{stack, "replaces " + resource})
			case "may be replaced":
				out = append(out, Finding{stack, "may replace " + resource})
			case "destroy":
				out = append(out, Finding{stack, "deletes " + resource})
			case "orphan":
				out = append(out, Finding{stack, "removes " + resource + " from the stack (retained, no longer managed)"})
			}
			continue
		}
		if m := outputGone.FindStringSubmatch(line); m != nil {
			out = append(out, Finding{stack, "removes output " + m[1]})
			continue
		}
		if m := policyChange.FindStringSubmatch(line); m != nil && resource != "" {
			out = append(out, Finding{stack, "changes the " + m[1] + " of " + resource})
		}
	}
	return out
}

// stacks lists the stacks of a cloud assembly by its manifest (stale
// templates a directory may hold are not stacks of the assembly).
func stacks(dir string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("%s is not a cloud assembly (%v): synthesize it with cdk synth -o %s", dir, err, dir)
	}
	var manifest struct {
		Artifacts map[string]struct {
			Type       string
			Properties struct{ TemplateFile string }
		}
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		return nil, fmt.Errorf("%s/manifest.json: %w", dir, err)
	}
	out := map[string]string{}
	for id, a := range manifest.Artifacts {
		if a.Type == "aws:cloudformation:stack" {
			out[id] = filepath.Join(dir, a.Properties.TemplateFile)
		}
	}
	return out, nil
}

// Run diffs every stack of Head against its template in Base, writes the
// CLI's reports to Out and returns the findings.
func Run(ctx context.Context, o Options) ([]Finding, error) {
	base, err := stacks(o.Base)
	if err != nil {
		return nil, err
	}
	head, err := stacks(o.Head)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(head))
	for n := range head {
		names = append(names, n)
	}
	sort.Strings(names)
	empty := filepath.Join(os.TempDir(), fmt.Sprintf("prdiff-empty-%d.template.json", os.Getpid()))
	defer os.Remove(empty)
	var findings []Finding
	for _, name := range names {
		tpl, ok := base[name]
		if !ok {
			fmt.Fprintf(o.Out, "%s is a new stack (diffed against an empty template)\n", name)
			if err := os.WriteFile(empty, []byte("{}\n"), 0o644); err != nil {
				return nil, err
			}
			tpl = empty
		}
		var report bytes.Buffer
		// --exclusively: a fixed template compares one stack, not the
		// stacks it depends on (each gets its own run).
		cmd := exec.CommandContext(ctx, o.CDK, "diff", "--no-color", "--exclusively", "--app", o.Head, "--template", tpl, name)
		cmd.Env, cmd.Stdout, cmd.Stderr = o.Env, &report, &report
		err := cmd.Run()
		o.Out.Write(report.Bytes())
		if err != nil {
			return nil, fmt.Errorf("cdk diff %s: %w", name, err)
		}
		findings = append(findings, Scan(name, report.String())...)
	}
	gone := []string{}
	for name := range base {
		if _, ok := head[name]; !ok {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	for _, name := range gone {
		fmt.Fprintf(o.Out, "Stack %s\n[-] the whole stack is gone from head: cdk deploy leaves it, cdk destroy would delete every resource\n", name)
		findings = append(findings, Finding{name, "removes the whole stack"})
	}
	return findings, nil
}
