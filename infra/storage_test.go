package infra

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/internal/fallback"
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
