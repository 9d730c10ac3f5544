// Package scraper consumes huntaze-hybrid-workflows.fifo and sends each
// message to OnlyFans through the browser, one creator's messages strictly
// in order, each at most once.
package scraper

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/scraper/ledgerrun"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/scraper/settings"
)

// Ledger remembers per messageId, in Redis and across redeliveries and task
// restarts: whether it was sent, whether a send was attempted (the outcome
// may be unknown), and how many real failures it had. Entries expire after
// the queue's retention.
type Ledger struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	// seen is this process's memory of the Redis server its last fan
	// record read was answered by (ledger_lastsent.go, serverSeen).
	seen serverSeen
}

// NewLedger returns a ledger.
func NewLedger(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Ledger {
	return &Ledger{rdb: rdb, prefix: prefix, ttl: ttl}
}

// State of one message.
type State struct {
	Sent bool
	// Attempting: a send was clicked and its outcome is unknown. Mark is
	// what the chat showed to that fan right before that click (how many
	// identical texts, and the messages shown last): identical texts are
	// distinct messages, so only a copy after those means this one arrived
	// (onlyfans.Mark.Judge).
	Attempting bool
	Mark       onlyfans.Mark
	Failures   int
	// ChatBrokenSince is when the fan's chat was first seen unusable while
	// the probe chat worked, and has not worked since (zero: never).
	ChatBrokenSince time.Time
	// PausedSession is the version of the creator's session the site
	// rejected ("" when the creator is not paused).
	PausedSession string
	// Since is when this Redis began to serve the ledger (its epoch key,
	// written by the first State after Redis lost its data): a message
	// accepted before then may have had marks this Redis does not hold.
	Since time.Time
}

// epochKey holds the Redis-side start of the ledger (unix ms); see
// State.Since.
func (l *Ledger) epochKey() string { return settings.LedgerEpochKey(l.prefix) }

// PrimeEpoch records that this Redis has served the ledger all along (a
// new deployment's first Redis, tests): nothing before now was lost, and
// the server serving now has served since (its run key: no click waits for
// records a lost Redis might have held).
func (l *Ledger) PrimeEpoch(ctx context.Context) error {
	return ledgerrun.Prime(ctx, l.rdb, l.prefix)
}

func (l *Ledger) key(kind, id string) string { return l.prefix + ":" + kind + ":" + id }

// State reads the message's entries and its creator's pause in one round
// trip.
func (l *Ledger) State(ctx context.Context, id, creator string) (State, error) {
	vals, err := l.rdb.MGet(ctx, l.key("sent", id), l.key("attempt", id), l.key("fail", id), l.key("paused", creator), l.epochKey(), l.key("broken", id)).Result()
	if err != nil {
		return State{}, err
	}
	st := State{Sent: vals[0] != nil, Attempting: vals[1] != nil}
	if s, ok := vals[1].(string); ok {
		st.Mark = parseMark(s)
	}
	if s, ok := vals[2].(string); ok {
		st.Failures, _ = strconv.Atoi(s)
	}
	st.PausedSession, _ = vals[3].(string)
	if s, ok := vals[5].(string); ok {
		if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
			st.ChatBrokenSince = time.UnixMilli(ms)
		}
	}
	epoch, _ := vals[4].(string)
	if epoch == "" {
		// No epoch: this Redis lost its data (or never served the ledger).
		// The first to notice writes now; every task reads the same.
		now := strconv.FormatInt(time.Now().UnixMilli(), 10)
		if err := l.rdb.SetNX(ctx, l.epochKey(), now, 0).Err(); err != nil {
			return State{}, err
		}
		if epoch, err = l.rdb.Get(ctx, l.epochKey()).Result(); err != nil {
			return State{}, err
		}
	}
	ms, _ := strconv.ParseInt(epoch, 10, 64)
	st.Since = time.UnixMilli(ms)
	return st, nil
}

// parseMark reads an attempt mark: JSON, or a bare count (a mark written
// before anchors, judged by the count alone).
func parseMark(s string) onlyfans.Mark {
	if n, err := strconv.Atoi(s); err == nil {
		return onlyfans.Mark{Identical: n, Legacy: true}
	}
	var m onlyfans.Mark
	if json.Unmarshal([]byte(s), &m) != nil {
		// Unreadable: the count rule on nothing would say "sent" for any
		// copy; an anchor that matches nothing says Unknown. Safe reading.
		return onlyfans.Mark{Count: 1, Tail: []onlyfans.Shown{{Key: "unreadable mark"}}}
	}
	return m
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

// MarkAttempting is written right before the send click, with what the
// chat showed then; never earlier, so a failure before the click leaves
// nothing that could pass for a send.
func (l *Ledger) MarkAttempting(ctx context.Context, id string, mark onlyfans.Mark) error {
	b, err := json.Marshal(mark)
	if err != nil {
		return err
	}
	return l.rdb.Set(ctx, l.key("attempt", id), b, l.ttl).Err()
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

// ChatBrokenSince records now as the first time the message's fan's chat
// was seen unusable while the probe chat worked, unless an earlier time is
// recorded, and returns the time recorded (one round trip).
func (l *Ledger) ChatBrokenSince(ctx context.Context, id string, now time.Time) (time.Time, error) {
	return l.firstSeen(ctx, l.key("broken", id), now)
}

// behindKey names the first sighting of an earlier chat state after the
// click of the message clicked at clickedAt (Unix ms, its mark's
// ClickedAt): per click, so a later click of the message starts afresh.
func (l *Ledger) behindKey(id string, clickedAt int64) string {
	return l.key("behind", id+":"+strconv.FormatInt(clickedAt, 10))
}

// sightedScript records a sighting on receive ARGV[2] at ARGV[1] (Unix
// ms) in KEYS[1] ("<first ms>|<receive>", for ARGV[3] ms) and returns the
// first sighting's time: the one recorded, if it was made on this receive
// or the one before (a run of receives that each saw it), else this one
// (a receive in between did not: an outage, a refusal, an open breaker, a
// pause).
var sightedScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
local receive = tonumber(ARGV[2])
if cur then
  local first, last = string.match(cur, '^(%d+)|(%d+)$')
  last = tonumber(last)
  if first and (last == receive or last + 1 == receive) then
    redis.call('SET', KEYS[1], first .. '|' .. ARGV[2], 'PX', ARGV[3])
    return tonumber(first)
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2], 'PX', ARGV[3])
return tonumber(ARGV[1])`)

// sightedSince records a sighting in key on the given receive of the
// message (SQS's receive count) and returns since when the receives up to
// this one have each seen it (one round trip). A receive that did not
// (it could not look, or it never looked) breaks the run: the next
// sighting starts a new one.
func (l *Ledger) sightedSince(ctx context.Context, key string, receive int, now time.Time) (time.Time, error) {
	ms, err := sightedScript.Run(ctx, l.rdb, []string{key}, now.UnixMilli(), receive, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// BehindSince records that a read-back on the given receive showed the
// fan's chat in an earlier state than at the message's click at clickedAt
// (onlyfans.Verdict.Behind), and returns since when consecutive receives
// have each seen it so (sightedSince).
func (l *Ledger) BehindSince(ctx context.Context, id string, clickedAt int64, receive int, now time.Time) (time.Time, error) {
	return l.sightedSince(ctx, l.behindKey(id, clickedAt), receive, now)
}

// StalePageSince records that the page the message was about to be
// clicked on, on the given receive, did not show the last message found
// sent to its fan (Processor.staleClickPage), and returns since when
// consecutive receives have each seen it so (sightedSince).
func (l *Ledger) StalePageSince(ctx context.Context, id string, receive int, now time.Time) (time.Time, error) {
	return l.sightedSince(ctx, l.key("stalepage", id), receive, now)
}

// firstSeen sets key to now unless it is set, and returns the time it
// holds (one round trip).
func (l *Ledger) firstSeen(ctx context.Context, key string, now time.Time) (time.Time, error) {
	pipe := l.rdb.TxPipeline()
	pipe.SetNX(ctx, key, now.UnixMilli(), l.ttl)
	get := pipe.Get(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return time.Time{}, err
	}
	ms, err := get.Int64()
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// ForgetBrokenChat forgets that the message's fan's chat was seen unusable:
// it worked since, or a receive saw the whole site fail (then it was not
// seen so on every receive, and the patience starts again).
func (l *Ledger) ForgetBrokenChat(ctx context.Context, id string) error {
	return l.rdb.Del(ctx, l.key("broken", id)).Err()
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
