package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/test/harness"
)

// rate runs f for d and returns operations per second.
func rate(d time.Duration, f func(i int) int) float64 {
	start := time.Now()
	ops, i := 0, 0
	for time.Since(start) < d {
		ops += f(i)
		i++
	}
	return float64(ops) / time.Since(start).Seconds()
}

type limiterFigures struct {
	batched, perRecord, bareBatch float64
	commandsPerBatch              int
	roundTripsPerBatch            int
}

func measureLimiter(t harness.T, d time.Duration) limiterFigures {
	r := harness.StartRedis(t)
	c := r.Client()
	ctx := context.Background()
	cfg := ratelimit.Config{Limit: 10, Window: time.Minute, KeyPrefix: "bench"}
	l, err := ratelimit.New(c, cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	harness.PrimeFence(t, c, cfg.FenceKey())
	batch := func(n int) []ratelimit.Request {
		reqs := make([]ratelimit.Request, 10)
		for i := range reqs {
			reqs[i] = ratelimit.Request{Key: fmt.Sprint("creator-", (n*10+i)%1000), ID: fmt.Sprint("m", n, "-", i)}
		}
		return reqs
	}
	var f limiterFigures
	f.batched = rate(d, func(i int) int { _, _ = l.Decide(ctx, batch(i)); return 10 })
	f.perRecord = rate(d, func(i int) int {
		for _, req := range batch(i + 1_000_000) {
			_, _ = l.Decide(ctx, []ratelimit.Request{req})
		}
		return 10
	})
	// The ceiling: EVALSHA of the same script with arguments prepared once
	// (no Go-side building or parsing), one batch of 10 per call.
	sha := ratelimit.ScriptSHA()
	keys, args := ratelimit.ScriptArgs(cfg, batch(2_000_000), "", 0)
	f.bareBatch = rate(d, func(int) int { _ = c.EvalSha(ctx, sha, keys, args...).Err(); return 10 })

	before := harness.CommandCalls(t, c)
	_, _ = l.Decide(ctx, batch(3_000_000))
	after := harness.CommandCalls(t, c)
	f.roundTripsPerBatch = after["evalsha"] - before["evalsha"] + after["eval"] - before["eval"]
	for k, v := range after {
		if k != "evalsha" && k != "eval" && k != "info" {
			f.commandsPerBatch += v - before[k]
		}
	}
	return f
}

// naiveScript is the baseline of the backlog comparison: a rolling-window
// log without reservations, where every denied message is told to come back
// when the oldest approval leaves the window (all at the same time).
var naiveScript = redis.NewScript(`
local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3]); return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + tonumber(ARGV[2]) - now}`)

// backlogFigures are the drain of one creator's backlog.
type backlogFigures struct {
	receivesPerMessage, naiveReceivesPerMessage float64
	drain, ideal                                time.Duration
}

// measureBacklog drains n messages of one creator at 10 per window from the
// head of a FIFO group, as AWS hands it to the limiter (the first 10 in
// order; the first denied record and every later one come back together
// after RetryAfter plus up to window/20 of lateness), and compares with the
// naive retry from a standard queue.
func measureBacklog(t harness.T, n int, window time.Duration) backlogFigures {
	r := harness.StartRedis(t)
	c := r.Client()
	ctx := context.Background()
	lateness := window / 20
	cfg := ratelimit.Config{Limit: 10, Window: window, KeyPrefix: "bl"}
	l, err := ratelimit.New(c, cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	harness.PrimeFence(t, c, cfg.FenceKey())
	var f backlogFigures
	queue := make([]string, n)
	for i := range queue {
		queue[i] = fmt.Sprint("m", i)
	}
	start, receives, seed := time.Now(), 0, uint64(1)
	for len(queue) > 0 && time.Since(start) < 5*time.Minute {
		batch := queue[:min(10, len(queue))]
		reqs := make([]ratelimit.Request, len(batch))
		for i, id := range batch {
			reqs[i] = ratelimit.Request{Key: "creator", ID: id}
		}
		ds, err := l.Decide(ctx, reqs)
		if err != nil {
			t.Fatalf("%v", err)
		}
		receives += len(batch)
		k := 0
		for k < len(ds) && ds[k].Allowed {
			k++
		}
		queue = queue[k:]
		if k < len(ds) {
			seed = seed*6364136223846793005 + 1442695040888963407
			time.Sleep(ds[k].RetryAfter + time.Duration(seed>>33)%(lateness+1))
		}
	}
	f.drain = time.Since(start)
	f.ideal = time.Duration(n/10-1) * window
	f.receivesPerMessage = float64(receives) / float64(n)
	f.naiveReceivesPerMessage = drain(n, lateness, func(ids []string) ([]bool, []time.Duration) {
		ok, retry := make([]bool, len(ids)), make([]time.Duration, len(ids))
		for i, id := range ids {
			v, err := naiveScript.Run(ctx, c, []string{"naive"}, 10, window.Microseconds(), id).Int64Slice()
			if err != nil {
				t.Fatalf("%v", err)
			}
			ok[i], retry[i] = v[0] == 1, time.Duration(v[1])*time.Microsecond
		}
		return ok, retry
	})
	return f
}

// drain simulates a standard queue and the Lambda event source: the due
// messages are decided in batches of up to 10; each denied message comes
// back after its retry plus up to lateness.
func drain(n int, lateness time.Duration, decide func(ids []string) ([]bool, []time.Duration)) float64 {
	type due struct {
		at time.Time
		id string
	}
	pending := make([]due, 0, n)
	start := time.Now()
	for i := range n {
		pending = append(pending, due{start, fmt.Sprint("m", i)})
	}
	receives, done := 0, 0
	seed := uint64(1)
	for done < n && time.Since(start) < 5*time.Minute {
		sort.Slice(pending, func(i, j int) bool { return pending[i].at.Before(pending[j].at) })
		if w := time.Until(pending[0].at); w > 0 {
			time.Sleep(w)
		}
		k := 0
		for k < len(pending) && k < 10 && !pending[k].at.After(time.Now()) {
			k++
		}
		batch := pending[:k]
		ids := make([]string, k)
		for i, m := range batch {
			ids[i] = m.id
		}
		rest := append([]due(nil), pending[k:]...)
		receives += k
		ok, retry := decide(ids)
		for i := range ids {
			if ok[i] {
				done++
				continue
			}
			seed = seed*6364136223846793005 + 1442695040888963407
			late := time.Duration(seed>>33) % (lateness + 1)
			rest = append(rest, due{time.Now().Add(retry[i] + late), ids[i]})
		}
		pending = rest
	}
	return float64(receives) / float64(n)
}
