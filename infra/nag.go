package infra

import (
	"strings"

	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// Suppression is one accepted cdk-nag finding with its reason. Every one is
// listed in the README (TestSuppressionsAreListedInTheREADME).
type Suppression struct {
	Rule, Reason string
	// AppliesTo narrows an IAM5/IAM4 suppression to the named wildcards.
	AppliesTo []string
}

// suppress attaches suppressions to a construct and its children.
func suppress(c constructs.IConstruct, s ...Suppression) {
	var list []*cdknag.NagPackSuppression
	for _, x := range s {
		ns := &cdknag.NagPackSuppression{Id: jsii.String(x.Rule), Reason: jsii.String(x.Reason)}
		if len(x.AppliesTo) > 0 {
			var at []any
			for _, a := range x.AppliesTo {
				if re, ok := strings.CutPrefix(a, "regex:"); ok {
					at = append(at, map[string]any{"regex": re})
				} else {
					at = append(at, a)
				}
			}
			ns.AppliesTo = &at
		}
		list = append(list, ns)
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &list, jsii.Bool(true))
}
