package quota_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/test/harness"
)

// countedDynamoDB is the real client, its calls counted.
type countedDynamoDB struct {
	*dynamodb.Client
	updates, gets atomic.Int32
}

func (c *countedDynamoDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.updates.Add(1)
	return c.Client.UpdateItem(ctx, in, o...)
}

func (c *countedDynamoDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.gets.Add(1)
	return c.Client.GetItem(ctx, in, o...)
}

func TestTake_AnAllowedTakeIsOneUpdateOnAnIdleOrBusyKeyAndHintsNeverBendTheCap(t *testing.T) {
	d := harness.StartDynalite(t)
	if err := emulator.CreateTable(context.Background(), d.DynamoDB, "quota", "key"); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	ddbA, ddbB := &countedDynamoDB{Client: d.DynamoDB}, &countedDynamoDB{Client: d.DynamoDB}
	a := quota.NewStore(ddbA, "quota", "key", "expiresAt", now) // two API instances
	b := quota.NewStore(ddbB, "quota", "key", "expiresAt", now)
	rule := quota.Rule{Interval: 6 * time.Second, Burst: 3}
	ctx := context.Background()
	take := func(s *quota.Store) bool {
		ok, _, err := s.Take(ctx, "creator#a", 1, rule)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// GIVEN instance A took from an idle key (the idle update, one call)
	if !take(a) || ddbA.updates.Load() != 1 {
		t.Fatalf("first take: %d updates", ddbA.updates.Load())
	}
	// WHEN it takes again while the key is busy
	// THEN that is one call too (the busy update first)
	if !take(a) || ddbA.updates.Load() != 2 {
		t.Fatalf("busy take: %d updates in all, want 2", ddbA.updates.Load())
	}
	// AND instance B, without a hint, pays the idle update's failure once
	if !take(b) || ddbB.updates.Load() != 2 {
		t.Fatalf("B's first take: %d updates, want 2", ddbB.updates.Load())
	}
	// AND the cap holds whatever the hints: the burst is used up
	if take(a) || take(b) {
		t.Fatal("a take past the burst was allowed")
	}
	// WHEN the key drains and goes idle (tat only grows, so a hint never
	// says busy when the key is idle: it ran out with the drain)
	clock = clock.Add(time.Minute)
	before := ddbA.updates.Load()
	// THEN the take starts from now in one call, and the burst counts from now
	if !take(a) || ddbA.updates.Load()-before != 1 {
		t.Fatalf("after the drain: allowed after %d updates, want 1", ddbA.updates.Load()-before)
	}
	if !take(b) || !take(a) || take(b) {
		t.Fatal("after the drain, the burst of 3 was not what was admitted")
	}
}
