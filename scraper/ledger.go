// Package scraper consumes huntaze-hybrid-workflows.fifo and sends each
// message to OnlyFans through the browser, one creator's messages strictly
// in order, each at most once.
package scraper

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ledger remembers per messageId, in Redis and across redeliveries and task
// restarts: whether it was sent, whether a send was attempted (the outcome
// may be unknown), and how many real failures it had. Entries expire after
// the queue's retention.
type Ledger struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewLedger returns a ledger.
func NewLedger(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Ledger {
	return &Ledger{rdb: rdb, prefix: prefix, ttl: ttl}
}

// State of one message.
type State struct {
	Sent bool
	// Attempting: a send was clicked and its outcome is unknown.
	// IdenticalBefore is how many messages with the same text the chat
	// showed to that fan right before that click: identical texts are
	// distinct messages, so only a count above it means this one arrived.
	Attempting      bool
	IdenticalBefore int
	Failures        int
	// PausedSession is the version of the creator's session the site
	// rejected ("" when the creator is not paused).
	PausedSession string
}

func (l *Ledger) key(kind, id string) string { return l.prefix + ":" + kind + ":" + id }

// State reads the message's entries and its creator's pause in one round
// trip.
func (l *Ledger) State(ctx context.Context, id, creator string) (State, error) {
	vals, err := l.rdb.MGet(ctx, l.key("sent", id), l.key("attempt", id), l.key("fail", id), l.key("paused", creator)).Result()
	if err != nil {
		return State{}, err
	}
	st := State{Sent: vals[0] != nil, Attempting: vals[1] != nil}
	if s, ok := vals[1].(string); ok {
		st.IdenticalBefore, _ = strconv.Atoi(s)
	}
	if s, ok := vals[2].(string); ok {
		st.Failures, _ = strconv.Atoi(s)
	}
	st.PausedSession, _ = vals[3].(string)
	return st, nil
}

// Pause records that the site rejected the creator's session of version:
// its messages wait until the session changes.
func (l *Ledger) Pause(ctx context.Context, creator, version string) error {
	return l.rdb.Set(ctx, l.key("paused", creator), version, l.ttl).Err()
}

// Resume lifts a creator's pause.
func (l *Ledger) Resume(ctx context.Context, creator string) error {
	return l.rdb.Del(ctx, l.key("paused", creator)).Err()
}

// MarkAttempting is written right before the send click, with the number of
// identical texts the chat showed then; never earlier, so a failure before
// the click leaves nothing that could pass for a send.
func (l *Ledger) MarkAttempting(ctx context.Context, id string, identicalBefore int) error {
	return l.rdb.Set(ctx, l.key("attempt", id), identicalBefore, l.ttl).Err()
}

// ClearAttempting is called when the site said the message was not sent.
func (l *Ledger) ClearAttempting(ctx context.Context, id string) error {
	return l.rdb.Del(ctx, l.key("attempt", id)).Err()
}

// MarkSent is written as soon as the site accepted the message, before the
// queue delete.
func (l *Ledger) MarkSent(ctx context.Context, id string) error {
	return l.rdb.Set(ctx, l.key("sent", id), time.Now().UTC().Format(time.RFC3339Nano), l.ttl).Err()
}

// AddFailure counts one real failure and returns the new count.
func (l *Ledger) AddFailure(ctx context.Context, id string) (int, error) {
	pipe := l.rdb.TxPipeline()
	incr := pipe.Incr(ctx, l.key("fail", id))
	pipe.Expire(ctx, l.key("fail", id), l.ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	n := incr.Val()
	if n <= 0 {
		return 0, errors.New("ledger: bad failure count")
	}
	return int(n), nil
}

// CountWait counts one wait of the message for a fault not its own (429,
// breaker, session, outage) and returns the count: the exponent of its
// backoff.
func (l *Ledger) CountWait(ctx context.Context, id string) (int, error) {
	pipe := l.rdb.TxPipeline()
	incr := pipe.Incr(ctx, l.key("wait", id))
	pipe.Expire(ctx, l.key("wait", id), l.ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	return int(incr.Val()), nil
}

// claimScript takes or renews KEYS[1] for owner ARGV[1] for ARGV[2] ms and
// returns 0, or returns the ms another owner still holds it for.
var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 0
end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then return tonumber(ARGV[2]) end
return left`)

// unclaimScript deletes KEYS[1] only if owner ARGV[1] holds it.
var unclaimScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Claim makes owner the only consumer working on the queue message id for
// ttl (renewed by calling it again). It returns how long another owner
// still holds it, or 0 when owner has it.
func (l *Ledger) Claim(ctx context.Context, id, owner string, ttl time.Duration) (time.Duration, error) {
	left, err := claimScript.Run(ctx, l.rdb, []string{l.key("claim", id)}, owner, max(ttl.Milliseconds(), 1)).Int64()
	return time.Duration(left) * time.Millisecond, err
}

// Unclaim gives up owner's claim on id (no-op if another owner has it).
func (l *Ledger) Unclaim(ctx context.Context, id, owner string) error {
	return unclaimScript.Run(ctx, l.rdb, []string{l.key("claim", id)}, owner).Err()
}
