package harness

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis is a redis-server on 127.0.0.1 without persistence.
type Redis struct {
	Addr string
	t    T
	bin  string
	port int
	proc *Process
}

// StartRedis starts redis-server on a free port and stops it after the test.
func StartRedis(t T) *Redis {
	t.Helper()
	bin := LookBinary(t, "redis-server", InstallApt, "/usr/bin/redis-server")
	r := &Redis{t: t, bin: bin}
	// The port is chosen by us (redis cannot report a port it picked), so a
	// rare race with another process is retried.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		r.port = FreePort(t)
		if err = r.launch(); err == nil {
			t.Logf("harness: redis-server (%s) listening on %s", bin, r.Addr)
			return r
		}
	}
	t.Fatalf("harness: %v", err)
	return nil
}

func (r *Redis) launch() error {
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.port)
	r.proc = start(r.t, "redis-server", nil, r.bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port),
		"--save", "", "--appendonly", "no", "--protected-mode", "yes")
	if err := waitTCP(r.proc, r.Addr); err != nil {
		r.proc.Stop()
		return fmt.Errorf("%w\n%s", err, r.proc.Output())
	}
	return nil
}

// Client returns a go-redis client for this server, closed after the test.
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server (an outage, as seen by clients).
func (r *Redis) Stop() { r.proc.Stop() }

// Restart starts a fresh, empty server on the same port (a failover to a
// replica without the scripts loaded, as seen by clients).
func (r *Redis) Restart() {
	r.t.Helper()
	r.proc.Stop()
	if err := r.launch(); err != nil {
		r.t.Fatalf("harness: restart redis: %v", err)
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

// PrimeFence writes a limiter's fence key with epoch 0, as if this Redis had
// served the limiter for a long time, so a test does not start with the
// one-window hold that a fresh Redis gets (tests of the fence skip this).
func PrimeFence(t T, c redis.Cmdable, key string) {
	t.Helper()
	if err := c.Set(context.Background(), key, 0, 0).Err(); err != nil {
		t.Fatalf("harness: prime fence %s: %v", key, err)
	}
}
