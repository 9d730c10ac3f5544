package sqslimits_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/sqslimits"
)

func TestSplit_ByCountAndByTotalSize(t *testing.T) {
	sizes := func(ns ...int) []int { return ns }
	id := func(n int) int { return n }
	cases := []struct {
		name  string
		items []int
		want  []int // chunk lengths
	}{
		{"empty", nil, nil},
		{"23 small", make([]int, 23), []int{10, 10, 3}},
		{"10 of 110 KB (1.07 MiB)", sizes(110_000, 110_000, 110_000, 110_000, 110_000, 110_000, 110_000, 110_000, 110_000, 110_000), []int{9, 1}},
		{"exactly 1 MiB", sizes(1<<19, 1<<19, 1), []int{2, 1}},
		{"one too large alone", sizes(10, 2<<20, 10), []int{1, 1, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := sqslimits.Split(c.items, id)
			var lens []int
			total := 0
			for _, ch := range got {
				lens = append(lens, len(ch))
				sum := 0
				for _, s := range ch {
					sum += s
				}
				if len(ch) > 1 && sum > sqslimits.MaxBatchBytes {
					t.Errorf("chunk of %d bytes", sum)
				}
				total += len(ch)
			}
			if total != len(c.items) || len(lens) != len(c.want) {
				t.Fatalf("chunks %v, want %v", lens, c.want)
			}
			for i := range lens {
				if lens[i] != c.want[i] {
					t.Fatalf("chunks %v, want %v", lens, c.want)
				}
			}
		})
	}
}

func TestEntrySize_CountsBodyAndAttributes(t *testing.T) {
	got := sqslimits.SendEntrySize(sqstypes.SendMessageBatchRequestEntry{
		MessageBody:       aws.String(strings.Repeat("x", 100)),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{"userId": {DataType: aws.String("String"), StringValue: aws.String("u-1")}},
	})
	if want := 100 + len("userId") + len("String") + len("u-1"); got != want {
		t.Fatalf("size %d, want %d", got, want)
	}
}

func TestVisibilitySeconds_CountsTheTimeSinceTheReceive(t *testing.T) {
	cases := []struct {
		d, since time.Duration
		want     int32
	}{
		{1500 * time.Millisecond, 0, 2},
		{0, 0, 1},
		{13 * time.Hour, 0, 43200},
		{11 * time.Hour, 2 * time.Hour, 36000},
		{time.Hour, 12 * time.Hour, 1},
	}
	for _, c := range cases {
		if got := sqslimits.VisibilitySeconds(c.d, c.since); got != c.want {
			t.Errorf("VisibilitySeconds(%s, %s) = %d, want %d", c.d, c.since, got, c.want)
		}
	}
}

func TestOutageDelay_GrowsWithReceivesAndStaysCapped(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 1000; n++ {
		d := sqslimits.OutageDelay(5*time.Second, n)
		if d < prev || d > sqslimits.MaxOutageDelay {
			t.Fatalf("receive %d: %s after %s", n, d, prev)
		}
		prev = d
	}
	if sqslimits.OutageDelay(5*time.Second, 1) != 5*time.Second || prev != sqslimits.MaxOutageDelay {
		t.Fatalf("first %s, last %s", sqslimits.OutageDelay(5*time.Second, 1), prev)
	}
}

func TestBackoff_ScaledCap(t *testing.T) {
	b := sqslimits.Backoff{Base: time.Second, Max: 4 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 50: 4 * time.Second} {
		if got := b.Delay(n); got != want {
			t.Errorf("Delay(%d) = %s, want %s", n, got, want)
		}
	}
	if got := (sqslimits.Backoff{Base: time.Second, Max: time.Hour}).Delay(100); got != sqslimits.MaxOutageDelay {
		t.Errorf("a cap above 15 minutes is not honoured: %s", got)
	}
}
