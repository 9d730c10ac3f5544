// Package ratelimit decides which messages may go to OnlyFans now: at most
// Limit approvals per creator in any rolling Window, decided atomically in
// Redis for a whole batch in one script call, with time taken from the Redis
// server so that concurrent callers with skewed clocks agree.
//
// It behaves like a token bucket whose tokens each come back exactly one
// window after they were spent (not a refill rate, which would let about
// 2×Limit through in one rolling window). Denied messages get a reserved
// future slot and a RetryAfter pointing at it, so a backlog drains in order
// with about one denial per message.
package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed limiter.lua
var scriptSource string

var script = redis.NewScript(scriptSource)

// Config of a limiter. The zero value is not valid; use DefaultConfig.
type Config struct {
	// Limit is the number of approvals allowed in any rolling Window.
	Limit int
	// Window is the length of the rolling window.
	Window time.Duration
	// ReservationGrace is how long past its slot a denied message may come
	// back and still find its reservation. SQS returns messages up to a few
	// seconds late; a holder later than this queues again.
	ReservationGrace time.Duration
	// ReturnSlack is added to reserved slots to absorb how late SQS returns
	// a message after its visibility timeout (whole seconds, poller delay).
	// Without it a slot holder often finds the window still full and is
	// denied again. It costs throughput under backlog: Limit per
	// Window+ReturnSlack instead of per Window; it never loosens the limit.
	ReturnSlack time.Duration
	// KeyPrefix namespaces the Redis keys (e.g. per environment).
	KeyPrefix string
}

// DefaultConfig is OnlyFans' limit: 10 messages per minute per creator.
func DefaultConfig() Config {
	return Config{Limit: 10, Window: time.Minute, ReservationGrace: time.Minute, ReturnSlack: 2 * time.Second, KeyPrefix: "rl"}
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Limit < 1 {
		errs = append(errs, fmt.Errorf("limit must be at least 1, got %d", c.Limit))
	}
	if c.Window < time.Millisecond {
		errs = append(errs, fmt.Errorf("window must be at least 1ms, got %s", c.Window))
	}
	if c.ReservationGrace < 0 {
		errs = append(errs, fmt.Errorf("reservation grace must not be negative, got %s", c.ReservationGrace))
	}
	if c.ReturnSlack < 0 {
		errs = append(errs, fmt.Errorf("return slack must not be negative, got %s", c.ReturnSlack))
	}
	return errors.Join(errs...)
}

// Request asks for one message.
type Request struct {
	// Key is the creator key (creatorId, else userId).
	Key string
	// ID is the message id; it names the message's reservation.
	ID string
}

// Decision answers one Request.
type Decision struct {
	Allowed bool
	// Remaining approvals left in the current window after this decision.
	Remaining int
	// RetryAfter is when a denied message should be tried again (zero if
	// allowed). It is not capped; SQS callers cap it at 12 h.
	RetryAfter time.Duration
	// At is the Redis server time of the decision.
	At time.Time
	// Slot is when the message was approved, or the slot reserved for it.
	Slot time.Time
}

// Limiter makes decisions against one Redis.
type Limiter struct {
	rdb redis.Scripter
	cfg Config
}

// New returns a limiter; it does no I/O.
func New(rdb redis.Scripter, cfg Config) (*Limiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Limiter{rdb: rdb, cfg: cfg}, nil
}

// Config returns the limiter's configuration.
func (l *Limiter) Config() Config { return l.cfg }

// Keys returns the Redis keys of a creator: the approval log and the
// reservations. The hash tag keeps both in one cluster slot.
func (l *Limiter) Keys(creator string) (log, reservations string) {
	base := l.cfg.KeyPrefix + ":{" + creator + "}:"
	return base + "log", base + "resv"
}

// Decide decides every request in one script call (EVALSHA, falling back to
// EVAL after a failover or SCRIPT FLUSH). Requests for the same key are
// decided in order, each seeing the ones before it. On error no decision was
// made (the script is atomic): callers must treat every request as not
// approved.
func (l *Limiter) Decide(ctx context.Context, reqs []Request) ([]Decision, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	for _, r := range reqs {
		if r.Key == "" || r.ID == "" {
			return nil, fmt.Errorf("ratelimit: request needs a key and an id, got %+v", r)
		}
	}
	keys, args := ScriptArgs(l.cfg, reqs)
	raw, err := script.Run(ctx, l.rdb, keys, args...).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(raw) != 1+4*len(reqs) {
		return nil, fmt.Errorf("ratelimit: script returned %d values for %d requests", len(raw), len(reqs))
	}
	now := time.UnixMicro(raw[0])
	out := make([]Decision, len(reqs))
	for i := range reqs {
		v := raw[1+4*i:]
		out[i] = Decision{
			Allowed:    v[0] == 1,
			RetryAfter: time.Duration(v[1]) * time.Microsecond,
			Remaining:  int(v[2]),
			At:         now,
			Slot:       time.UnixMicro(v[3]),
		}
	}
	return out, nil
}

// ScriptSHA is the SHA1 of the decision script (for benchmarks that call
// EVALSHA directly).
func ScriptSHA() string { return script.Hash() }

// ScriptArgs returns the KEYS and ARGV of one script call for reqs, as
// Decide builds them.
func ScriptArgs(cfg Config, reqs []Request) ([]string, []any) {
	l := &Limiter{cfg: cfg}
	keys := make([]string, 0, 2*len(reqs))
	args := []any{cfg.Limit, cfg.Window.Microseconds(), cfg.ReservationGrace.Microseconds(), cfg.ReturnSlack.Microseconds()}
	for _, r := range reqs {
		log, resv := l.Keys(r.Key)
		keys = append(keys, log, resv)
		args = append(args, r.ID)
	}
	return keys, args
}
