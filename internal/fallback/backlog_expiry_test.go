package fallback_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/test/harness"
)

// Review of issue 23: a creator's backlog item expires (TTL) 15 days after
// its last reservation, its items 14 days after they were stored, and
// DynamoDB deletes expired items lazily ("within a few days"), in no
// particular order. When the backlog item is swept before an old replayed
// item, the creator's next reservation starts again at seq 1, beside the
// old seq 1 still in index creator-seq. The replay meets the old (replayed)
// item first, moves past seq 1 and skips the new item as already done: an
// accepted message stays pending for good and the creator stops waiting.
// (The old item is named so that dynalite returns it first among equal
// sequences; DynamoDB gives equal index keys in an unspecified order, so
// either can come first there.)
func TestASequenceReusedAfterTheBacklogItemExpiredIsStillReplayed(t *testing.T) {
	ddb := harness.StartDynalite(t)
	ctx := context.Background()
	if err := emulator.CreateFallbackTable(ctx, ddb.DynamoDB, "fallback"); err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ms.Store(time.Now().UnixMilli())
	s := fallback.NewStore(ddb.DynamoDB, "fallback", clk.now, 30*time.Second)
	r := &recorder{}

	store(t, s, "creator-a", "z-old") // an SQS outage, replayed the same day
	if _, err := s.Replay(ctx, r.send, 100); err != nil {
		t.Fatal(err)
	}
	// 15 days later the TTL sweeper has deleted the backlog item; the old
	// item, expired a day earlier, is still there (not yet swept).
	clk.add(15*24*time.Hour + time.Hour)
	if _, err := ddb.DynamoDB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String("fallback"),
		Key:       map[string]ddbtypes.AttributeValue{fallback.KeyAttribute: &ddbtypes.AttributeValueMemberS{Value: "creator#creator-a"}},
	}); err != nil {
		t.Fatal(err)
	}

	store(t, s, "creator-a", "b-new") // the next outage: stored, answered
	for range 3 {
		if _, err := s.Replay(ctx, r.send, 100); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(r.got["creator-a"], []string{"z-old", "b-new"}) {
		n, _ := s.PendingCount(ctx)
		b, _ := s.Backlogs(ctx, []string{"creator-a"})
		t.Fatalf("replayed %q, want z-old b-new: the message stored after the backlog item expired is never replayed (%d pending, backlog %+v)", r.got["creator-a"], n, b["creator-a"])
	}
}
