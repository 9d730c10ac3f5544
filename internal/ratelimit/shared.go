package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ServerRecord is a record, kept outside Redis and shared by every caller
// of one limiter (every scraper task, a restarted one too), of the Redis
// servers its decisions are made on: per server, the server's time (µs)
// of its latest announcement. name is the limiter's (Config.FenceKey).
//
// A caller's own memory of the server it decided on last (Limiter.last)
// fences a failback only for a caller that saw the failover: a task that
// decided nothing while a replica served, or a new process, deciding on an
// old primary that was cut off and never saw the replica's approvals, was
// not fenced, and the creator got twice the limit in one window (review 22
// M A). Nothing in that primary can tell it; the record can.
type ServerRecord interface {
	// Announce writes, in one atomic call, that server decides from atUS
	// on, drops the entries of drop that still hold the time given there
	// (expired ones; never server's; one announced again since stays),
	// and returns every entry the record holds after the write, this one
	// included: a write and a read that no other write can come between.
	Announce(ctx context.Context, name, server string, atUS int64, drop map[string]int64) (map[string]int64, error)
}

// NewShared returns a limiter whose decisions also take their evidence of
// a failover from rec:
//   - before its first decision on a server, and again once its last
//     announcement there is refresh old (refresh: half of span + max
//     hold), a caller announces the server (ServerRecord.Announce, with
//     the server's time at a script call that decided nothing) and
//     decides only after the write: the script refuses to decide on
//     another server than the announced one, or past the announcement's
//     time + refresh, and asks for an announcement instead;
//   - the announcement's answer is the record as that write left it:
//     every server announced before it. The most recent other one (its
//     time advanced by refresh, the latest its announcer may have decided
//     on it) fences this caller's decisions as a caller that saw the
//     failover is fenced, within span + max hold of it.
//
// Of two callers announcing different servers, the second to write sees
// the first and is fenced; the first decides no later than its
// announcement + refresh, so whichever server decides, no window holds
// the other's approvals too (review 22 AC A, B: a read of the record
// cached across a failed decision, or made between another caller's
// approvals and its write after them, missed a server resuming after an
// idle spell, and a failback doubled the limit). Two servers in use at
// once fence each other for as long as both are used: refused, never
// over the limit.
//
// Its calls: one write (an UpdateItem returning the item) per caller per
// refresh per server, and one extra script call then. A refused write is
// Decide's error: nothing decided.
func NewShared(rdb redis.Scripter, cfg Config, rec ServerRecord) (*Limiter, error) {
	l, err := New(rdb, cfg)
	if err != nil {
		return nil, err
	}
	l.record = rec
	return l, nil
}

// refresh is how long an announcement lets its caller decide on its
// server, and how far an announced time is advanced as evidence.
func (l *Limiter) refresh() time.Duration { return (l.cfg.Span() + l.cfg.MaxHold) / 2 }

// announceTries bounds the announcements one Decide makes (a server
// changing under each one).
const announceTries = 3

// recordArgs is what the script is told of the record: whether one is in
// use, this caller's announcement (its server and the end of its reach)
// and the evidence of another server (its time advanced by refresh).
func (l *Limiter) recordArgs() (use int, announced lastServer, evidence lastServer) {
	if l.record == nil {
		return 0, lastServer{}, lastServer{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	announced = l.announced
	if announced.server != "" {
		announced.at += l.refresh().Microseconds()
	}
	return 1, announced, l.evidence
}

// announce writes that server decides from atUS on, dropping the entries
// the last answer held that have expired, and keeps the answer's evidence.
func (l *Limiter) announce(ctx context.Context, server string, atUS int64) error {
	reach := l.refresh().Microseconds() + (l.cfg.Span() + max(l.cfg.MaxHold, 0)).Microseconds()
	l.mu.Lock()
	drop := map[string]int64{}
	for s, at := range l.entries {
		if s != server && at+reach < atUS {
			drop[s] = at
		}
	}
	l.mu.Unlock()
	entries, err := l.record.Announce(ctx, l.cfg.FenceKey(), server, atUS, drop)
	if err != nil {
		return fmt.Errorf("ratelimit: server record: %w (nothing decided)", err)
	}
	var evidence lastServer
	for s, at := range entries {
		if s != server && (evidence.server == "" || at > evidence.at) {
			evidence = lastServer{server: s, at: at}
		}
	}
	if evidence.server != "" {
		evidence.at += l.refresh().Microseconds()
	}
	l.mu.Lock()
	l.announced, l.evidence, l.entries = lastServer{server: server, at: atUS}, evidence, entries
	l.mu.Unlock()
	return nil
}
