package harness

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/devstack/emulator"
)

// Redis is a redis-server on 127.0.0.1 without persistence, stopped after
// the test.
type Redis struct {
	*emulator.Redis
	t T
}

// StartRedis starts redis-server on a free port and stops it after the test.
func StartRedis(t T) *Redis {
	t.Helper()
	r, err := emulator.StartRedis()
	check(t, err)
	t.Logf("harness: redis-server listening on %s", r.Addr)
	t.Cleanup(func() {
		_ = r.Close()
		if t.Failed() {
			t.Logf("harness: redis-server output:\n%s", r.Output())
		}
	})
	return &Redis{Redis: r, t: t}
}

// Client returns a go-redis client for this server, closed after the test.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Restart starts a fresh, empty server on the same port (a failover that
// lost the last writes, as seen by clients).
func (r *Redis) Restart() {
	r.t.Helper()
	if err := r.Redis.Restart(); err != nil {
		r.t.Fatalf("harness: %v", err)
	}
}

// RestartFromSnapshot starts a new server on the same port from the last
// snapshot a client took (SAVE): a Redis that kept some keys and lost the
// writes after them.
func (r *Redis) RestartFromSnapshot() {
	r.t.Helper()
	if err := r.Redis.RestartFromSnapshot(); err != nil {
		r.t.Fatalf("harness: %v", err)
	}
}

// Ping checks the server answers.
func (r *Redis) Ping(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	return c.Ping(ctx).Err()
}

// CommandCalls reads INFO commandstats: calls per command name (evalsha,
// zadd, ...), to count round trips and the work a script does.
func CommandCalls(t T, c *redis.Client) map[string]int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatalf("harness: INFO commandstats: %v", err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		out[strings.TrimPrefix(name, "cmdstat_")] = n
	}
	return out
}

// ScriptCalls is the number of EVALSHA and EVAL calls so far.
func ScriptCalls(t T, c *redis.Client) int {
	t.Helper()
	calls := CommandCalls(t, c)
	return calls["evalsha"] + calls["eval"]
}

// PrimeFence writes each fence key (a limiter's fence, the scraper ledger's
// epoch) with epoch 0, as if this Redis had served it for a long time, so a
// test does not start with the hold that a fresh Redis gets (tests of the
// fence skip this).
func PrimeFence(t T, c redis.Cmdable, keys ...string) {
	t.Helper()
	for _, key := range keys {
		if err := c.Set(context.Background(), key, 0, 0).Err(); err != nil {
			t.Fatalf("harness: prime fence %s: %v", key, err)
		}
	}
}
