package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ServerRecord is a record, kept outside Redis and shared by every caller
// of one limiter (every scraper task, a restarted one too), of the Redis
// server its decisions were last made on and that server's time then (µs;
// "" and 0: none yet). name is the limiter's (Config.FenceKey).
//
// A caller's own memory of the server it decided on last (Limiter.last)
// fences a failback only for a caller that saw the failover: a task that
// decided nothing while a replica served, or a new process, deciding on an
// old primary that was cut off and never saw the replica's approvals, was
// not fenced, and the creator got twice the limit in one window (review 22
// M A). Nothing in that primary can tell it; the record can.
type ServerRecord interface {
	LastServer(ctx context.Context, name string) (server string, atUS int64, err error)
	RecordServer(ctx context.Context, name, server string, atUS int64) error
}

// NewShared returns a limiter whose decisions also take their evidence of
// a failover from rec, and keep rec up to date:
//   - a decision is made with both this caller's memory and the record
//     (read at most refresh ago; its time advanced by refresh, the most it
//     may lag the last decision on its server), so a decision on another
//     server than either names, within one span + max hold of it, is
//     fenced as a caller that saw the failover fences it;
//   - a caller writes the record on its first decision on a server, and
//     again once its last write is refresh old (refresh: half of span +
//     max hold), before it returns any approval: a refused write is
//     Decide's error, so no approval made on a server goes unrecorded.
//
// Its calls: one GetItem-sized read and one write per caller per refresh,
// and one write per failover. Residual: a caller whose read of the record
// is older than the first successful write of a new server's name can miss
// it; a new server is fenced for span + max hold from its first decision
// (its fence key names the old one), so that needs the record to refuse
// writes for about half of that, during a failover.
func NewShared(rdb redis.Scripter, cfg Config, rec ServerRecord) (*Limiter, error) {
	l, err := New(rdb, cfg)
	if err != nil {
		return nil, err
	}
	l.record = rec
	return l, nil
}

// refresh is how stale the record may be read, and how often a caller
// writes it while it decides on one server.
func (l *Limiter) refresh() time.Duration { return (l.cfg.Span() + l.cfg.MaxHold) / 2 }

// recordSeen is the record's server (read at most refresh ago), its time
// advanced by refresh; none without a record.
func (l *Limiter) recordSeen(ctx context.Context) (lastServer, error) {
	if l.record == nil {
		return lastServer{}, nil
	}
	l.mu.Lock()
	shared, readAt := l.shared, l.sharedRead
	l.mu.Unlock()
	if !readAt.IsZero() && time.Since(readAt) < l.refresh() {
		return shared, nil
	}
	server, at, err := l.record.LastServer(ctx, l.cfg.FenceKey())
	if err != nil {
		return lastServer{}, fmt.Errorf("ratelimit: server record: %w (nothing decided)", err)
	}
	shared = lastServer{}
	if server != "" {
		shared = lastServer{server: server, at: at + l.refresh().Microseconds()}
	}
	l.mu.Lock()
	l.shared, l.sharedRead = shared, time.Now()
	l.mu.Unlock()
	return shared, nil
}

// share writes the record after a decision on server at atUS, unless this
// caller wrote that server less than refresh ago.
func (l *Limiter) share(ctx context.Context, server string, atUS int64) error {
	if l.record == nil || server == "" {
		return nil
	}
	l.mu.Lock()
	wrote := l.recorded
	l.mu.Unlock()
	if wrote.server == server && atUS-wrote.at < l.refresh().Microseconds() {
		return nil
	}
	if err := l.record.RecordServer(ctx, l.cfg.FenceKey(), server, atUS); err != nil {
		return fmt.Errorf("ratelimit: server record: %w (no approval of this call may be used)", err)
	}
	l.mu.Lock()
	l.recorded = lastServer{server: server, at: atUS}
	// What the record holds now, as a read would find it.
	l.shared, l.sharedRead = lastServer{server: server, at: atUS + l.refresh().Microseconds()}, time.Now()
	l.mu.Unlock()
	return nil
}
