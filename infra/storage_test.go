package infra

import (
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/queues"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// The replay queries each creator's fallback items by acceptance sequence:
// the table must carry that index, keyed as internal/fallback reads it.
func TestFallbackTableHasTheCreatorSequenceIndex(t *testing.T) {
	// GIVEN the dev system
	sys := system(t, "dev")
	// WHEN its pipeline stack is synthesized
	tpl := assertions.Template_FromStack(sys.Pipeline.Stack, nil)
	// THEN the fallback table has the creator index (creatorKey, seq)
	tpl.HasResourceProperties(jsii.String("AWS::DynamoDB::Table"), map[string]any{
		"KeySchema": []any{map[string]any{"AttributeName": fallback.KeyAttribute, "KeyType": "HASH"}},
		"GlobalSecondaryIndexes": []any{map[string]any{
			"IndexName": fallback.CreatorIndex,
			"KeySchema": []any{
				map[string]any{"AttributeName": fallback.CreatorAttribute, "KeyType": "HASH"},
				map[string]any{"AttributeName": fallback.SeqAttribute, "KeyType": "RANGE"},
			},
			"Projection": map[string]any{"ProjectionType": "ALL"},
		}},
	})
}

// The scraper keeps the attempt mark of a click left unresolved where a
// Redis that forgets cannot lose it: a table that keeps what it is given
// (point-in-time recovery, retained in prod), whose leftovers expire, that
// the task alone reads and writes, named to the task by ATTEMPTS_TABLE.
func TestTheScrapersAttemptMarksHaveATableOnlyTheTaskUses(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		// GIVEN the environment's pipeline stack
		st := system(t, env).Pipeline.Stack
		tpl := assertions.Template_FromStack(st, nil)
		// THEN the attempts table is keyed by message id, on demand, with
		// its TTL and point-in-time recovery
		tables := resources(t, st, "AWS::DynamoDB::Table")
		var id string
		for tid, p := range tables {
			if js(p["TableName"]) == `"`+queues.Name("huntaze-scraper-attempts", env)+`"` {
				id = tid
				if js(p["KeySchema"]) != `[{"AttributeName":"`+scrapersettings.AttemptsKeyAttribute+`","KeyType":"HASH"}]` ||
					js(p["TimeToLiveSpecification"]) != `{"AttributeName":"`+scrapersettings.AttemptsTTLAttribute+`","Enabled":true}` ||
					p["BillingMode"] != "PAY_PER_REQUEST" || js(p["PointInTimeRecoverySpecification"]) != `{"PointInTimeRecoveryEnabled":true}` {
					t.Errorf("%s: attempts table %s", env, js(p))
				}
			}
		}
		if id == "" {
			t.Fatalf("%s: no attempts table", env)
		}
		// AND in prod it outlives the stack
		if env == "prod" {
			tpl.HasResource(jsii.String("AWS::DynamoDB::Table"), map[string]any{
				"Properties": map[string]any{"TableName": "huntaze-scraper-attempts"}, "DeletionPolicy": "Retain",
			})
		}
		// AND the scraper task is told its name
		tpl.HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
			"ContainerDefinitions": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
				"Environment": assertions.Match_ArrayWith(&[]any{map[string]any{"Name": "ATTEMPTS_TABLE", "Value": map[string]any{"Ref": id}}}),
			})}),
		})
		// AND only the scraper's task role names it, with get, put,
		// delete and update of one item (the update: the send gate's
		// server record; no scan, no query)
		granted := false
		for pid, p := range resources(t, st, "AWS::IAM::Policy") {
			doc := js(p["PolicyDocument"])
			if !strings.Contains(doc, id) {
				continue
			}
			granted = true
			if !strings.Contains(js(p["Roles"]), "ScraperTaskRole") {
				t.Errorf("%s: policy %s of %s names the attempts table", env, pid, js(p["Roles"]))
			}
			for _, st := range statements(t, p["PolicyDocument"]) {
				if strings.Contains(js(st["Resource"]), id) && js(st["Action"]) != `["dynamodb:GetItem","dynamodb:PutItem","dynamodb:DeleteItem","dynamodb:UpdateItem"]` {
					t.Errorf("%s: the task may %s on the attempts table", env, js(st["Action"]))
				}
			}
		}
		if !granted {
			t.Errorf("%s: no role may use the attempts table", env)
		}
	}
}
