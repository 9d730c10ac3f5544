// Command templatediff compares two synthesized cloud assemblies (cdk.out
// directories) without an AWS account: for each stack, the resources added,
// removed and changed, and for a changed resource the properties that differ.
// `make diff BASE=<git ref>` uses it for PR review.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

type template struct {
	Resources map[string]struct {
		Type       string
		Properties map[string]any
	}
}

func load(dir string) (map[string]template, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.template.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]template{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var t template
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".template.json")] = t
	}
	return out, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Diff returns the report and whether anything differs.
func Diff(base, head map[string]template) (string, bool) {
	var b strings.Builder
	changed := false
	stacks := map[string]bool{}
	for k := range base {
		stacks[k] = true
	}
	for k := range head {
		stacks[k] = true
	}
	for _, stack := range keys(stacks) {
		bt, inBase := base[stack]
		ht, inHead := head[stack]
		fmt.Fprintf(&b, "Stack %s\n", stack)
		switch {
		case !inBase:
			fmt.Fprintf(&b, "[+] new stack with %d resources\n", len(ht.Resources))
			changed = true
			continue
		case !inHead:
			fmt.Fprintf(&b, "[-] stack removed (%d resources)\n", len(bt.Resources))
			changed = true
			continue
		}
		ids := map[string]bool{}
		for id := range bt.Resources {
			ids[id] = true
		}
		for id := range ht.Resources {
			ids[id] = true
		}
		n := 0
		for _, id := range keys(ids) {
			br, okB := bt.Resources[id]
			hr, okH := ht.Resources[id]
			switch {
			case !okB:
				fmt.Fprintf(&b, "[+] %s %s\n", hr.Type, id)
			case !okH:
				fmt.Fprintf(&b, "[-] %s %s\n", br.Type, id)
			case !reflect.DeepEqual(br, hr):
				fmt.Fprintf(&b, "[~] %s %s\n", hr.Type, id)
				props := map[string]bool{}
				for p := range br.Properties {
					props[p] = true
				}
				for p := range hr.Properties {
					props[p] = true
				}
				for _, p := range keys(props) {
					if !reflect.DeepEqual(br.Properties[p], hr.Properties[p]) {
						before, _ := json.Marshal(br.Properties[p])
						after, _ := json.Marshal(hr.Properties[p])
						fmt.Fprintf(&b, "    %s: %s → %s\n", p, clip(before), clip(after))
					}
				}
			default:
				continue
			}
			n++
		}
		if n == 0 {
			b.WriteString("There were no differences\n")
		}
		changed = changed || n > 0
	}
	return b.String(), changed
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: templatediff <base cdk.out> <head cdk.out>")
		os.Exit(2)
	}
	base, err := load(os.Args[1])
	if err == nil && len(base) == 0 {
		err = fmt.Errorf("no templates in %s", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	head, err := load(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	report, _ := Diff(base, head)
	fmt.Print(report)
}
