package quota_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/test/harness"
)

func store(t *testing.T, now func() time.Time) *quota.Store {
	t.Helper()
	d := harness.StartDynalite(t)
	if err := emulator.CreateTable(context.Background(), d.DynamoDB, "quota", "key"); err != nil {
		t.Fatal(err)
	}
	return quota.NewStore(d.DynamoDB, "quota", "key", "expiresAt", now)
}

func TestTake_TenConcurrentInstancesNeverPassTheBurst(t *testing.T) {
	// GIVEN a waiting cap of 25 messages draining one per hour (no drain
	// during the test), and 10 API instances taking concurrently
	s := store(t, time.Now)
	rule := quota.Rule{Interval: time.Hour, Burst: 25}
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 6 {
				ok, retry, err := s.Take(context.Background(), "creator#a", 1, rule)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed.Add(1)
				} else if retry <= 0 {
					t.Errorf("refused without a positive retry: %s", retry)
				}
			}
		}()
	}
	wg.Wait()
	// THEN exactly the burst was admitted
	if got := allowed.Load(); got != 25 {
		t.Fatalf("%d admitted, want 25", got)
	}
}

func TestTake_DrainsAtTheIntervalAndRefusesWhatDoesNotFit(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := store(t, func() time.Time { return now })
	rule := quota.Rule{Interval: 6 * time.Second, Burst: 10}
	if ok, _, err := s.Take(context.Background(), "c", 10, rule); !ok || err != nil {
		t.Fatalf("first 10: %t %v", ok, err)
	}
	// full: the 11th waits for one drain interval
	if ok, retry, _ := s.Take(context.Background(), "c", 1, rule); ok || retry != 6*time.Second {
		t.Fatalf("11th: %t retry %s, want refused for 6s", ok, retry)
	}
	// 12 s later two have drained
	now = now.Add(12 * time.Second)
	if ok, _, _ := s.Take(context.Background(), "c", 2, rule); !ok {
		t.Fatal("two after two drains refused")
	}
	if ok, _, _ := s.Take(context.Background(), "c", 1, rule); ok {
		t.Fatal("a third admitted")
	}
	// idle for long: starts afresh
	now = now.Add(time.Hour)
	if ok, _, _ := s.Take(context.Background(), "c", 10, rule); !ok {
		t.Fatal("after idling, a full burst refused")
	}
}

func TestCount_TenConcurrentInstancesAdmitTheLimitPerWindow(t *testing.T) {
	s := store(t, time.Now)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				ok, retry, err := s.Count(context.Background(), "caller#u", 1, 20, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					allowed.Add(1)
				} else if retry <= 0 {
					t.Errorf("refused without a positive retry")
				}
			}
		}()
	}
	wg.Wait()
	if got := allowed.Load(); got != 20 {
		t.Fatalf("%d admitted, want 20", got)
	}
}
