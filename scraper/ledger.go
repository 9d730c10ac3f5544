// Package scraper consumes huntaze-hybrid-workflows.fifo and sends each
// message to OnlyFans through the browser, one creator's messages strictly
// in order, each at most once.
package scraper

import (
	"context"
	"errors"
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
	Sent       bool
	Attempting bool
	Failures   int
}

func (l *Ledger) key(kind, id string) string { return l.prefix + ":" + kind + ":" + id }

// State reads the three entries in one round trip.
func (l *Ledger) State(ctx context.Context, id string) (State, error) {
	vals, err := l.rdb.MGet(ctx, l.key("sent", id), l.key("attempt", id), l.key("fail", id)).Result()
	if err != nil {
		return State{}, err
	}
	st := State{Sent: vals[0] != nil, Attempting: vals[1] != nil}
	if s, ok := vals[2].(string); ok {
		for _, c := range s {
			st.Failures = st.Failures*10 + int(c-'0')
		}
	}
	return st, nil
}

// MarkAttempting is written right before the send click.
func (l *Ledger) MarkAttempting(ctx context.Context, id string) error {
	return l.rdb.Set(ctx, l.key("attempt", id), time.Now().UTC().Format(time.RFC3339Nano), l.ttl).Err()
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
