package main

import (
	"strings"
	"testing"
)

func TestDiffReportsAddedRemovedAndChangedProperties(t *testing.T) {
	res := func(typ string, props map[string]any) struct {
		Type       string
		Properties map[string]any
	} {
		return struct {
			Type       string
			Properties map[string]any
		}{typ, props}
	}
	base := map[string]template{"S": {Resources: map[string]struct {
		Type       string
		Properties map[string]any
	}{
		"Q":   res("AWS::SQS::Queue", map[string]any{"VisibilityTimeout": 180.0}),
		"Old": res("AWS::SNS::Topic", nil),
	}}}
	head := map[string]template{"S": {Resources: map[string]struct {
		Type       string
		Properties map[string]any
	}{
		"Q":   res("AWS::SQS::Queue", map[string]any{"VisibilityTimeout": 300.0}),
		"New": res("AWS::S3::Bucket", nil),
	}}}
	report, changed := Diff(base, head)
	for _, want := range []string{"[+] AWS::S3::Bucket New", "[-] AWS::SNS::Topic Old", "[~] AWS::SQS::Queue Q", "VisibilityTimeout: 180 → 300"} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if !changed {
		t.Error("changed = false")
	}
	if same, changed := Diff(base, base); changed || !strings.Contains(same, "There were no differences") {
		t.Errorf("identical assemblies: %v\n%s", changed, same)
	}
}
