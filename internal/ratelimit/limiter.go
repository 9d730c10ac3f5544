// Package ratelimit decides which messages may go to OnlyFans now: at most
// Limit approvals per creator in any rolling Window (+ Margin), decided
// atomically in Redis for a whole batch in one script call, with time taken
// from the Redis server so that concurrent callers with skewed clocks agree.
//
// Contract of Decide (one EVALSHA, one round trip):
//   - a request is approved at time t only if fewer than Limit approvals of
//     its key lie in (t − Window − Margin, t];
//   - requests are decided in the order given; after the first denial of a
//     key every later request of that key in the call is denied with the
//     same RetryAfter, so a creator's later messages never overtake it;
//   - RetryAfter is the moment the key's window next has room;
//   - an approval's entry lies at its decision time until Restamp moves it
//     to the moment its send ended (the latest the site can have recorded
//     it): a site that records a send late is counted from then; Hold
//     moves it later still, to the last moment a send that got no answer
//     may land;
//   - a Redis that lost its state (no fence key: restart without
//     persistence, node replacement, failover to an empty replica) approves
//     nothing for one Window + Margin + MaxHold after it is first seen: every
//     approval it forgot is then out of every rolling window, a held one too
//     (Decision.Fenced); so does a fence key written by another server
//     (its run_id, or its master_replid: a primary demoted and promoted
//     back): a restart from an older snapshot or a failover to a replica
//     behind on replication kept the fence and perhaps not the latest
//     approvals;
//   - a caller that decided on another server within that reach is fenced
//     too (a failback to a primary that never saw the other's approvals),
//     and with a shared record of the servers (NewShared) so is every
//     caller, a new process included.
//
// It behaves like a bucket of Limit tokens where each spent token comes back
// exactly one window after it was spent (not a refill rate, which would let
// about 2×Limit through in one rolling window).
package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ServerLua sets the Lua local `server` to the name of the Redis server
// running the script (server.lua): the limiter's scripts begin with it, and
// the scraper's ledger names its server the same way.
//
//go:embed server.lua
var ServerLua string

//go:embed limiter.lua
var scriptSource string

var script = redis.NewScript(ServerLua + scriptSource)

//go:embed restamp.lua
var restampSource string

var restampScript = redis.NewScript(ServerLua + restampSource)

// Config of a limiter. The zero value is not valid; use DefaultConfig.
type Config struct {
	// Limit is the number of approvals allowed in any rolling Window.
	Limit int
	// Window is the length of the rolling window the remote side enforces.
	Window time.Duration
	// Margin widens the window the limiter counts in: Window + Margin. The
	// scraper's send gate sets it so that the variable delay between its
	// decision and the moment the site sees the send can never put Limit+1
	// sends in the site's own Window.
	Margin time.Duration
	// KeyPrefix namespaces the Redis keys (e.g. per environment).
	KeyPrefix string
	// MaxHold is the furthest ahead Hold may move an approval (the
	// scraper's send gate: LATE_COMMIT_HORIZON). A Redis that lost its
	// state is fenced for Span + MaxHold, so that an approval held that
	// far and forgotten is out of every window before anything is
	// approved again. 0 (the rate limiter, which never holds): one span.
	MaxHold time.Duration
	// ChargeAhead places each approval this far past its decision (at most
	// MaxHold): it counts as a send that may land that late until Restamp
	// or Hold moves it, so a lost Restamp or Hold call over-charges, never
	// under-charges (the send gate: LATE_COMMIT_HORIZON; review 22 H). 0
	// (the rate limiter): at its decision.
	ChargeAhead time.Duration
}

// DefaultConfig is OnlyFans' limit (DefaultLimit) under the "rl" prefix.
func DefaultConfig() Config {
	l := DefaultLimit()
	return Config{Limit: l.Count, Window: l.Window, KeyPrefix: "rl"}
}

// Span is the length of the window the limiter counts approvals in.
func (c Config) Span() time.Duration { return c.Window + c.Margin }

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Limit < 1 {
		errs = append(errs, fmt.Errorf("limit must be at least 1, got %d", c.Limit))
	}
	if c.Window < time.Millisecond {
		errs = append(errs, fmt.Errorf("window must be at least 1ms, got %s", c.Window))
	}
	if c.Margin < 0 {
		errs = append(errs, fmt.Errorf("margin must not be negative, got %s", c.Margin))
	}
	if c.KeyPrefix == "" {
		errs = append(errs, errors.New("key prefix is required"))
	}
	if c.MaxHold < 0 {
		errs = append(errs, fmt.Errorf("max hold must not be negative, got %s", c.MaxHold))
	}
	if c.ChargeAhead < 0 || c.ChargeAhead > max(c.MaxHold, 0) {
		errs = append(errs, fmt.Errorf("charge ahead must lie between 0 and the max hold (%s), got %s", c.MaxHold, c.ChargeAhead))
	}
	return errors.Join(errs...)
}

// Request asks for one message.
type Request struct {
	// Key is the creator key (creatorId, else userId).
	Key string
	// ID is the message id (it names the approval in the log).
	ID string
}

// Decision answers one Request.
type Decision struct {
	Allowed bool
	// Remaining approvals left in the current window after this decision.
	Remaining int
	// RetryAfter is when a denied request may be tried again (zero if
	// allowed): the moment its key's window has room, or the end of the
	// fence.
	RetryAfter time.Duration
	// At is the Redis server time of the decision.
	At time.Time
	// Fenced is true while the limiter holds everything after finding a
	// Redis that lost its state.
	Fenced bool
	// Approval names the approval an allowed request spent (its member in
	// the key's log; "" when denied): Restamp and Hold move exactly it.
	Approval string
}

// Limiter makes decisions against one Redis.
type Limiter struct {
	rdb redis.Scripter
	cfg Config
	// last is the server the last decision was made on and its Redis time
	// then (the script's caller_server, caller_seen_us): a decision on
	// another server within the fence's reach is fenced (review 22 L).
	mu   sync.Mutex
	last lastServer
	// record is the shared record of the servers (nil: none; NewShared);
	// announced is this caller's last announcement in it, entries the
	// record as that announcement left it, and evidence the most recent
	// other server there, its time advanced by refresh.
	record    ServerRecord
	announced lastServer
	entries   map[string]int64
	evidence  lastServer
}

func (l *Limiter) lastSeen() lastServer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// saw records a decision on server at its time atUS: the latest one, or
// any on another server (a failover seen by this caller).
func (l *Limiter) saw(server string, atUS int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if atUS >= l.last.at || server != l.last.server {
		l.last = lastServer{server: server, at: atUS}
	}
}

// scriptHead is the number of values the script returns before the
// per-request ones: now_us, fenced, server.
const scriptHead = 3

// lastServer is a Redis server a Limiter decided on and its time then.
type lastServer struct {
	server string
	at     int64 // µs
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

// LogKey returns the Redis key of a creator's approval log.
func (c Config) LogKey(creator string) string { return c.KeyPrefix + ":{" + creator + "}:log" }

// FenceKey returns the Redis key holding the epoch of this Redis and the
// server that wrote it ("<epoch>|<run_id><master_replid>").
func (c Config) FenceKey() string { return c.KeyPrefix + ":fence" }

// Decide decides every request in one script call (EVALSHA, falling back to
// EVAL after a failover or SCRIPT FLUSH), in the order given. On error no
// decision was made (the script is atomic): callers must treat every request
// as not approved.
func (l *Limiter) Decide(ctx context.Context, reqs []Request) ([]Decision, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	for _, r := range reqs {
		if r.Key == "" || r.ID == "" {
			return nil, fmt.Errorf("ratelimit: request needs a key and an id, got %+v", r)
		}
	}
	for range announceTries {
		use, announced, evidence := l.recordArgs()
		keys, args := scriptArgs(l.cfg, reqs, l.lastSeen(), recordSeen{use: use, announced: announced, evidence: evidence})
		raw, err := script.Run(ctx, l.rdb, keys, args...).Slice()
		if err != nil {
			return nil, fmt.Errorf("ratelimit: redis: %w", err)
		}
		out, server, nowUS, err := parseDecisions(raw, len(reqs))
		if err != nil {
			return nil, err
		}
		if out == nil { // the script asks for an announcement first
			if err := l.announce(ctx, server, nowUS); err != nil {
				return nil, err
			}
			continue
		}
		l.saw(server, nowUS)
		return out, nil
	}
	return nil, fmt.Errorf("ratelimit: server record: the server changed under %d announcements (nothing decided)", announceTries)
}

// parseDecisions reads the script's answer for n requests: their
// decisions, and the server and its time (µs) they were made on; no
// decisions (nil), and the server and its time, when the script asks for
// an announcement in the shared record first (NewShared).
func parseDecisions(raw []any, n int) ([]Decision, string, int64, error) {
	if len(raw) != scriptHead+4*n && len(raw) != scriptHead {
		return nil, "", 0, fmt.Errorf("ratelimit: script returned %d values for %d requests", len(raw), n)
	}
	num := func(i int) (int64, error) {
		v, ok := raw[i].(int64)
		if !ok {
			return 0, fmt.Errorf("ratelimit: script value %d is %T, want an integer", i, raw[i])
		}
		return v, nil
	}
	nowUS, err := num(0)
	if err != nil {
		return nil, "", 0, err
	}
	fencedN, err := num(1)
	if err != nil {
		return nil, "", 0, err
	}
	server, _ := raw[2].(string)
	if len(raw) == scriptHead {
		return nil, server, nowUS, nil
	}
	now, fenced := time.UnixMicro(nowUS), fencedN == 1
	out := make([]Decision, n)
	for i := range out {
		var v [3]int64
		for j := range v {
			if v[j], err = num(scriptHead + 4*i + j); err != nil {
				return nil, "", 0, err
			}
		}
		approval, _ := raw[scriptHead+4*i+3].(string)
		out[i] = Decision{
			Allowed:    v[0] == 1,
			RetryAfter: time.Duration(v[1]) * time.Microsecond,
			Remaining:  int(v[2]),
			At:         now,
			Fenced:     fenced,
			Approval:   approval,
		}
	}
	return out, server, nowUS, nil
}

// Restamp moves approval (a Decision's Approval) in key's log to now
// (Redis time), in one script call: the send it admitted has ended
// (answered, failed or timed out), and the site may have recorded it as
// late as that. Counted from its end, an approval covers a site that
// records late by up to the send's response timeout, which the margin
// alone (the click's spread) does not; until then it counts from its
// decision (plus ChargeAhead), so a send's response timeout must stay
// below Window + Margin. It reports whether the approval was found (a
// Redis that lost it is held by the fence). Naming the approval, not the
// request id, keeps one task's end call off another task's approval of
// the same id (review 22 J).
func (l *Limiter) Restamp(ctx context.Context, key, approval string) (bool, error) {
	return l.move(ctx, "restamp", key, approval, 0)
}

// Hold moves approval in key's log to now + later (Redis time): its send
// got no answer and the site may still record it until then, so the
// approval counts in every window up to one span after that and the key's
// later requests wait for it. later must not exceed Config.MaxHold: the
// fence of a Redis that lost its state covers holds up to that far only.
// It reports whether the approval was found.
func (l *Limiter) Hold(ctx context.Context, key, approval string, later time.Duration) (bool, error) {
	return l.move(ctx, "hold", key, approval, max(later, 0))
}

// move runs restamp.lua for Restamp (later 0) and Hold.
func (l *Limiter) move(ctx context.Context, what, key, approval string, later time.Duration) (bool, error) {
	if key == "" || approval == "" {
		return false, fmt.Errorf("ratelimit: %s needs a key and an approval, got %q, %q", what, key, approval)
	}
	last := l.lastSeen()
	raw, err := restampScript.Run(ctx, l.rdb, []string{l.cfg.LogKey(key), l.cfg.FenceKey()},
		approval, l.cfg.Span().Microseconds(), later.Microseconds(), l.cfg.MaxHold.Microseconds(), last.server, last.at).Slice()
	if err != nil {
		return false, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(raw) != 3 {
		return false, fmt.Errorf("ratelimit: %s script returned %d values, want 3", what, len(raw))
	}
	moved, _ := raw[0].(int64)
	nowUS, _ := raw[1].(int64)
	server, _ := raw[2].(string)
	l.saw(server, nowUS)
	return moved == 1, nil
}

// ScriptSHA is the SHA1 of the decision script (for benchmarks that call
// EVALSHA directly).
func ScriptSHA() string { return script.Hash() }

// ScriptArgs returns the KEYS and ARGV of one script call for reqs, as
// Decide builds them for a caller whose last decision was on callerServer
// at callerSeenUS, without a shared record (NewShared).
func ScriptArgs(cfg Config, reqs []Request, callerServer string, callerSeenUS int64) ([]string, []any) {
	return scriptArgs(cfg, reqs, lastServer{server: callerServer, at: callerSeenUS}, recordSeen{})
}

// recordSeen is what a script call is told of the shared record
// (Limiter.recordArgs): use 0 without one.
type recordSeen struct {
	use                 int
	announced, evidence lastServer
}

// scriptArgs returns the KEYS and ARGV of one script call for reqs, with
// the caller's memory (own) and what it knows of the shared record (rec).
func scriptArgs(cfg Config, reqs []Request, own lastServer, rec recordSeen) ([]string, []any) {
	keys := make([]string, 0, 1+len(reqs))
	keys = append(keys, cfg.FenceKey())
	args := make([]any, 0, 11+len(reqs))
	args = append(args, cfg.Limit, cfg.Span().Microseconds(), cfg.MaxHold.Microseconds(), cfg.ChargeAhead.Microseconds(),
		own.server, own.at, rec.use, rec.announced.server, rec.announced.at, rec.evidence.server, rec.evidence.at)
	for _, r := range reqs {
		keys = append(keys, cfg.LogKey(r.Key))
		args = append(args, r.ID)
	}
	return keys, args
}
