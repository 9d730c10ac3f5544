package ratelimit_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/test/harness"
)

// BenchmarkDecide compares deciding an SQS batch of 10 records in one script
// call (what the Lambda does) with one EVALSHA per record, on the same Redis
// in the same run. Compare decisions/s between the two; `make bench` prints
// both.
func BenchmarkDecide(b *testing.B) {
	r := harness.StartRedis(b)
	l, err := ratelimit.New(r.Client(), ratelimit.Config{Limit: 10, Window: time.Minute, KeyPrefix: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	harness.PrimeFence(b, r.Client(), l.Config().FenceKey())
	ctx := context.Background()
	batch := func(n int) []ratelimit.Request {
		reqs := make([]ratelimit.Request, 10)
		for i := range reqs {
			// 1000 creators: a mix of allowed and denied decisions.
			reqs[i] = ratelimit.Request{Key: fmt.Sprint("creator-", (n*10+i)%1000), ID: fmt.Sprint("m", n, "-", i)}
		}
		return reqs
	}
	b.Run("batch10-one-script-call", func(b *testing.B) {
		n := 0
		for b.Loop() {
			if _, err := l.Decide(ctx, batch(n)); err != nil {
				b.Fatal(err)
			}
			n++
		}
		b.ReportMetric(float64(10*n)/b.Elapsed().Seconds(), "decisions/s")
	})
	b.Run("batch10-one-call-per-record", func(b *testing.B) {
		n := 0
		for b.Loop() {
			for _, req := range batch(n + 1_000_000) {
				if _, err := l.Decide(ctx, []ratelimit.Request{req}); err != nil {
					b.Fatal(err)
				}
			}
			n++
		}
		b.ReportMetric(float64(10*n)/b.Elapsed().Seconds(), "decisions/s")
	})
}
