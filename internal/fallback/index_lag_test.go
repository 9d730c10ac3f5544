package fallback_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/test/harness"
)

// laggingIndex is dynalite with a global secondary index that has not
// caught up yet for some items: DynamoDB updates a GSI asynchronously
// (Query on a GSI cannot be consistent, and propagation slows down when the
// index is throttled); dynalite updates it with the write, which is kinder
// than AWS.
type laggingIndex struct {
	*dynamodb.Client
	mu     sync.Mutex
	hidden map[string]bool // messageId -> not in the index yet
}

func (l *laggingIndex) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := l.Client.Query(ctx, in, optFns...)
	if err != nil || in.IndexName == nil {
		return out, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var kept []map[string]ddbtypes.AttributeValue
	for _, it := range out.Items {
		if id, ok := it[fallback.KeyAttribute].(*ddbtypes.AttributeValueMemberS); ok && l.hidden[id.Value] {
			continue
		}
		kept = append(kept, it)
	}
	out.Items, out.Count = kept, int32(len(kept))
	return out, nil
}

func (l *laggingIndex) catchUp() { l.mu.Lock(); l.hidden = nil; l.mu.Unlock() }

// Review of issue 23: the replay gives up a sequence it cannot find in the
// index once a later item is older than the lease, and moves the creator's
// done past it. If the item was stored all along (202, stored_for_replay)
// and only the index was late, it is then below done: no replay run ever
// queries it again (each starts at done+1), so an accepted message stays
// pending in the table for good, undelivered, and no command brings it
// back (it is also queued after its creator's later message). A sequence
// found below done while still pending must still be delivered, or an item
// the base table holds must never be given up.
func TestAnItemTheIndexShowsLateIsStillReplayedAfterItsSequenceWasSkipped(t *testing.T) {
	ddb := harness.StartDynalite(t)
	if err := emulator.CreateFallbackTable(context.Background(), ddb.DynamoDB, "fallback"); err != nil {
		t.Fatal(err)
	}
	clk := &clock{}
	clk.ms.Store(time.Now().UnixMilli())
	idx := &laggingIndex{Client: ddb.DynamoDB, hidden: map[string]bool{"creator-a/a0": true}}
	s := fallback.NewStore(idx, "fallback", clk.now, 30*time.Second)
	store(t, s, "creator-a", "a0") // stored: the API answered 202 for it
	store(t, s, "creator-a", "a1")
	clk.add(31 * time.Second) // the index is late for a0 past the lease
	r := &recorder{}
	if _, err := s.Replay(context.Background(), r.send, 100); err != nil {
		t.Fatal(err)
	}
	idx.catchUp()
	for range 3 {
		if _, err := s.Replay(context.Background(), r.send, 100); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(r.got["creator-a"], "a0") {
		n, _ := s.PendingCount(context.Background())
		t.Fatalf("replayed %q; a0, stored and answered 202, is never replayed once its sequence was skipped (%d item(s) left pending for good)", r.got["creator-a"], n)
	}
}
