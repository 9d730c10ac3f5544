// Package iampolicy reads what each role of a synthesized template may do —
// every policy a role gets: inline on the role, AWS::IAM::Policy and
// AWS::IAM::ManagedPolicy resources naming it, and AWS managed policies by
// their documented actions — as "action → resource label" grants. Labels
// name stack resources by a fragment of their logical id, so a template and
// a local run (queue and table names) can be compared.
package iampolicy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Labels maps a fragment of a resource reference in a policy to its label.
var Labels = []struct{ Fragment, Label string }{
	{"QueuesRateLimiterQueue", "limiter-queue"}, {"QueuesRateLimiterDLQ", "limiter-dlq"}, {"QueuesWorkflowsQueue", "workflows-queue"},
	{"QueuesWorkflowsDLQ", "workflows-dlq"}, {"QueuesWorkflowsKey", "workflows-key"}, {"FallbackTable", "fallback-table"},
	{"IdempotencyTable", "idempotency-table"}, {"AttemptsTable", "attempts-table"}, {"RateLimiterEnabled", "flag-parameter"}, {"CacheAuthToken", "redis-secret"},
	{"CacheKey", "cache-key"}, {"onlyfans-session/*", "session-secrets"}, {"CredentialsKey", "credentials-key"}, {"CapturesKey", "captures-key"},
	{"/results/*", "results/*"}, {"/artifacts/*", "artifacts/*"}, {"Logs", "own-logs"}, {"replicationgroup", "cache-group"},
	{"container-assets", "cdk-image-repository"},
}

// awsManaged lists the actions of the AWS managed policies the stack
// attaches (as AWS documents them), all on "*".
var awsManaged = map[string][]string{
	"service-role/AWSLambdaVPCAccessExecutionRole": {
		"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
		"ec2:DescribeSubnets", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
	},
	"service-role/AWSLambdaBasicExecutionRole": {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"},
}

type resource struct {
	Type       string
	Properties map[string]any
}

// Template is a synthesized CloudFormation template.
type Template struct {
	Resources map[string]resource
}

// Parse reads a template from its JSON form (assertions.Template.ToJSON).
func Parse(raw any) (Template, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return Template{}, err
	}
	var t Template
	return t, json.Unmarshal(b, &t)
}

// RoleID returns the logical id of the role whose id starts with prefix.
func (t Template) RoleID(prefix string) (string, error) {
	for id, r := range t.Resources {
		if r.Type == "AWS::IAM::Role" && strings.HasPrefix(id, prefix) {
			return id, nil
		}
	}
	return "", fmt.Errorf("no role %s*", prefix)
}

// Grants lists every "action → label" the role may do, sorted.
func (t Template) Grants(roleID string) []string {
	var out []string
	role := t.Resources[roleID]
	for _, p := range asList(role.Properties["Policies"]) {
		out = append(out, statements(p.(map[string]any)["PolicyDocument"])...)
	}
	for _, arn := range asList(role.Properties["ManagedPolicyArns"]) {
		ref := js(arn)
		for name, actions := range awsManaged {
			if strings.Contains(ref, ":iam::aws:policy/"+name) {
				for _, a := range actions {
					out = append(out, a+" → *")
				}
			}
		}
		for id, r := range t.Resources {
			if r.Type == "AWS::IAM::ManagedPolicy" && strings.Contains(ref, `"`+id+`"`) {
				out = append(out, statements(r.Properties["PolicyDocument"])...)
			}
		}
	}
	for _, r := range t.Resources {
		if (r.Type == "AWS::IAM::Policy" || r.Type == "AWS::IAM::ManagedPolicy") && strings.Contains(js(r.Properties["Roles"]), `"`+roleID+`"`) {
			out = append(out, statements(r.Properties["PolicyDocument"])...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func statements(doc any) []string {
	var out []string
	d, _ := doc.(map[string]any)
	for _, s := range asList(d["Statement"]) {
		st := s.(map[string]any)
		if st["Effect"] != "Allow" {
			continue
		}
		for _, a := range asList(st["Action"]) {
			for _, r := range asList(st["Resource"]) {
				out = append(out, fmt.Sprint(a)+" → "+Label(r))
			}
		}
	}
	return out
}

// Label names a policy resource: "*", a label from Labels, or its JSON.
func Label(r any) string {
	ref := js(r)
	if ref == `"*"` {
		return "*"
	}
	for _, l := range Labels {
		if strings.Contains(ref, l.Fragment) {
			return l.Label
		}
	}
	return ref
}

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	default:
		return []any{x}
	}
}

func js(v any) string { b, _ := json.Marshal(v); return string(b) }
