package scraper

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/redis/go-redis/v9"

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

func (l *Ledger) lastSentKey(creator, fan string) string {
	return l.key("lastsent", creator+"/"+fan)
}

// RememberSent records ls as the last message sent to fan of creator, for
// the ledger's retention.
func (l *Ledger) RememberSent(ctx context.Context, creator, fan string, ls LastSent) error {
	b, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	return l.rdb.Set(ctx, l.lastSentKey(creator, fan), b, l.ttl).Err()
}

// LastSent reads the last message recorded sent to fan of creator; found
// is false when there is none (none recent, or Redis lost it).
func (l *Ledger) LastSent(ctx context.Context, creator, fan string) (ls LastSent, found bool, err error) {
	b, err := l.rdb.Get(ctx, l.lastSentKey(creator, fan)).Bytes()
	if errors.Is(err, redis.Nil) {
		return LastSent{}, false, nil
	}
	if err != nil {
		return LastSent{}, false, err
	}
	if json.Unmarshal(b, &ls) != nil {
		// Unreadable: nothing to check a page against (a click goes on as
		// before this record existed).
		return LastSent{}, false, nil
	}
	return ls, true, nil
}
