package scraper

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/scraper/ledgerrun"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// LastSent is the last message the scraper knows it sent to one fan of a
// creator: the mark of its click and its text's digest, so that a later
// click's page can be checked to show it (Processor.staleClickPage).
type LastSent struct {
	Mark   onlyfans.Mark `json:"m"`
	Digest string        `json:"d"`
	// At is when it was found sent (Unix milliseconds).
	At int64 `json:"at"`
}

// LastSentRead is a LastSent as read back, with what says whether this
// Redis can have lost a later one.
type LastSentRead struct {
	LastSent
	// Found: a record is held.
	Found bool
	// ThisRun: the record was written by the Redis server that serves now
	// (its INFO run_id and master_replid, ledgerrun.ServerLua). A record of an
	// earlier server (a restart from a snapshot, a failover to a replica,
	// a failback) or none at all may stand for a later message whose
	// record that Redis lost.
	ThisRun bool
	// RunSince is when this server was first seen serving the ledger
	// (zero: all along, Ledger.PrimeEpoch).
	RunSince time.Time
}

func (l *Ledger) lastSentKey(creator, fan string) string {
	return l.key("lastsent", creator+"/"+fan)
}

// runKey holds "<server>|<first seen ms>" of the Redis server serving the
// ledger (ledgerrun.ServerLua).
func (l *Ledger) runKey() string { return ledgerrun.Key(l.prefix) }

// rememberScript writes ARGV[1] to KEYS[1] for ARGV[2] ms, prefixed with
// the server (ledgerrun.ServerLua: "<server>|<record>"), and returns the
// server.
var rememberScript = redis.NewScript(ledgerrun.ServerLua + `
redis.call('SET', KEYS[1], server .. '|' .. ARGV[1], 'PX', ARGV[2])
return server`)

// lastSentScript reads KEYS[1] (a lastsent record) and returns it (” when
// none), the server (ledgerrun.ServerLua), and since when that server has served
// the ledger (Unix ms), recording it in KEYS[2] on its first sight (now,
// ARGV[1]). A ledger without a run key (a Redis emptied, restored from a
// snapshot taken before it held one, or deploying this) starts the run
// now: nothing tells it what the records it holds may have missed (review
// 22 L: adopting the ledger's epoch let a restored snapshot vouch for no
// record). PrimeRun declares a Redis that served all along.
var lastSentScript = redis.NewScript(ledgerrun.ServerLua + `
local cur = redis.call('GET', KEYS[2])
local since
if cur then
  local id, s = string.match(cur, '^(%x*)|(%d+)$')
  if id == server then since = s end
end
if not since then
  since = ARGV[1]
  redis.call('SET', KEYS[2], server .. '|' .. since)
end
return {redis.call('GET', KEYS[1]) or '', server, since}`)

// RememberSent records ls as the last message sent to fan of creator, for
// the ledger's retention, with the Redis server that holds it
// (ledgerrun.ServerLua). The server it was written on is one this process
// saw (serverSeen), as a read's is: a failover during a click puts the
// record on the replica only, and a failback to the old primary, whose
// reads this process saw before, is a move all the same (review 22 Q A).
func (l *Ledger) RememberSent(ctx context.Context, creator, fan string, ls LastSent) error {
	b, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	server, err := rememberScript.Run(ctx, l.rdb, []string{l.lastSentKey(creator, fan)}, b, l.ttl.Milliseconds()).Text()
	if err != nil {
		return err
	}
	l.seen.saw(server, time.UnixMilli(ls.At))
	return nil
}

// LastSent reads the last message recorded sent to fan of creator and
// whether this Redis may have lost a later one (one round trip).
func (l *Ledger) LastSent(ctx context.Context, creator, fan string, now time.Time) (LastSentRead, error) {
	vals, err := lastSentScript.Run(ctx, l.rdb, []string{l.lastSentKey(creator, fan), l.runKey(), l.epochKey()}, now.UnixMilli()).StringSlice()
	if err != nil {
		return LastSentRead{}, err
	}
	if len(vals) != 3 {
		return LastSentRead{}, errors.New("ledger: lastsent script returned a bad reply")
	}
	var r LastSentRead
	if ms, err := strconv.ParseInt(vals[2], 10, 64); err == nil && ms > 0 {
		r.RunSince = time.UnixMilli(ms)
	}
	movedAt := l.seen.saw(vals[1], now)
	if movedAt.After(r.RunSince) {
		// This process read from another server since this one started
		// serving: a failback to a primary that was cut off while the
		// other took writes (review 22 M B). Its records vouch for nothing
		// before the move.
		r.RunSince = movedAt
	}
	raw := vals[0]
	if raw == "" {
		return r, nil
	}
	run, record, prefixed := strings.Cut(raw, "|")
	if !prefixed || strings.HasPrefix(raw, "{") {
		// Written before records carried their run: of no known run.
		run, record = "", raw
	}
	if json.Unmarshal([]byte(record), &r.LastSent) != nil {
		// Unreadable: nothing to check a page against.
		return LastSentRead{RunSince: r.RunSince}, nil
	}
	r.Found, r.ThisRun = true, run == vals[1] && (movedAt.IsZero() || r.At > movedAt.UnixMilli())
	return r, nil
}

// serverSeen is what a process remembers of the ledger's Redis servers:
// the one its last fan-record read or write was answered by, and when it
// last moved from another to it. A server that never saw the other's writes (a primary
// cut off, never resynced, serving again after its replica took writes)
// names itself as it did before: its run key and its records look as if
// it served all along, and only the process's memory tells otherwise.
// Another process that never read from the other server has no such
// memory (docs/design.md: evidence outside the Redis it concerns). One
// server answers at a time: the ledger's client is a single-endpoint
// client (internal/redisclient), never a cluster's, whose shards would
// read as moves.
type serverSeen struct {
	mu      sync.Mutex
	server  string
	movedAt time.Time
}

// saw records that server answered now and returns when this process last
// moved to it from another server (zero: never, since it started).
func (s *serverSeen) saw(server string, now time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server != "" && s.server != server {
		s.movedAt = now
	}
	s.server = server
	return s.movedAt
}
