package infra

import (
	"strings"
	"testing"
)

// statements returns a policy document's statements.
func statements(t *testing.T, doc any) []map[string]any {
	t.Helper()
	d, ok := doc.(map[string]any)
	if !ok {
		return nil
	}
	var out []map[string]any
	for _, s := range d["Statement"].([]any) {
		out = append(out, s.(map[string]any))
	}
	return out
}

func list(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func TestVPCEndpoints_OnlyThisAccountsPrincipalsOnlyThisSystemsResources(t *testing.T) {
	// what each endpoint's resources must name (logical ids / ARN parts)
	want := map[string][]string{
		"sqs":            {"QueuesRateLimiterQueue", "QueuesRateLimiterDLQ", "QueuesWorkflowsQueue", "QueuesWorkflowsDLQ"},
		"secretsmanager": {"CacheAuthToken", "onlyfans-session/*"},
		"ecr.dkr":        {"container-assets-"},
		"ecr.api":        {"container-assets-"},
		"logs":           {"ScraperLogs"},
		"s3":             {"StorageResults", "starport-layer-bucket"},
		"dynamodb":       {"StorageFallbackTable", "StorageIdempotencyTable", "StorageAttemptsTable"},
	}
	noARN := map[string]bool{"ecr:GetAuthorizationToken": true, "secretsmanager:GetRandomPassword": true}
	for _, env := range []string{"dev", "prod"} {
		// GIVEN every VPC endpoint of the environment's template
		eps := resources(t, system(t, env).Pipeline.Stack, "AWS::EC2::VPCEndpoint")
		if len(eps) != len(want) {
			t.Fatalf("%s: %d endpoints, want %d", env, len(eps), len(want))
		}
		for id, ep := range eps {
			svc := ""
			for s := range want {
				name := js(ep["ServiceName"])
				if strings.Contains(name, "."+s+`"`) || strings.HasSuffix(strings.Trim(name, `"`), "."+s) {
					svc = s
				}
			}
			if svc == "" {
				t.Errorf("%s/%s: unexpected service %v", env, id, ep["ServiceName"])
				continue
			}
			// THEN it has a policy
			sts := statements(t, ep["PolicyDocument"])
			if len(sts) == 0 {
				t.Errorf("%s/%s (%s): no endpoint policy: any account's resources are reachable", env, id, svc)
				continue
			}
			var named string
			for _, st := range sts {
				res := js(st["Resource"])
				named += res
				actions := list(st["Action"])
				if st["Effect"] != "Allow" || js(st["Principal"]) != `{"AWS":"*"}` {
					t.Errorf("%s/%s: statement %s", env, id, js(st))
				}
				for _, a := range actions {
					if s, _ := a.(string); s == "*" || strings.HasSuffix(s, ":*") {
						t.Errorf("%s/%s: wildcard action %s", env, id, s)
					}
				}
				// AND every statement is for this account's principals
				// (ECR's layer bucket excepted: its URLs are signed by ECR)
				starport := strings.Contains(res, "starport-layer-bucket") && js(actions) == `["s3:GetObject"]`
				cond := js(st["Condition"])
				if !starport && !(strings.Contains(cond, `"aws:PrincipalAccount"`) && (strings.Contains(cond, "AWS::AccountId") || strings.Contains(cond, ProdAccount))) {
					t.Errorf("%s/%s: statement without this account's principal condition: %s", env, id, js(st))
				}
				// AND names resources, except for actions that take none
				if res == `"*"` {
					for _, a := range actions {
						if !noARN[a.(string)] {
							t.Errorf("%s/%s: %v on every resource", env, id, a)
						}
					}
				}
			}
			for _, w := range want[svc] {
				if !strings.Contains(named, w) {
					t.Errorf("%s/%s (%s): policy does not name %s: %s", env, id, svc, w, named)
				}
			}
		}
	}
}
