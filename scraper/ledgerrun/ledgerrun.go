// Package ledgerrun names the Redis server that serves the scraper's
// ledger (scraper.Ledger) and declares a Redis one that served it all
// along. It is apart from package scraper so that the local assembly
// (devstack) can prime a new Redis without linking the browser.
package ledgerrun

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper/settings"
)

// ServerLua sets `server` to what names the Redis server serving now and
// the history of writes it holds: its INFO run_id (a new process: a
// restart, a failover to another node) and its master_replid (a new
// replication history: a promotion, so a primary demoted, resynced and
// promoted back, whose run_id never changed, is a new server too: review
// 22 L). Both hex; a Redis without master_replid gives its run_id alone.
// It is the send gate's (ratelimit.ServerLua): one name for one server.
var ServerLua = ratelimit.ServerLua

// Key is the ledger's key under prefix that holds "<server>|<first seen
// ms>" of the Redis server serving it (ServerLua).
func Key(prefix string) string { return prefix + ":run" }

// primeScript writes the ledger's epoch (KEYS[1]) as 0 and its run key
// (KEYS[2]) as this server's since 0.
var primeScript = redis.NewScript(ServerLua + `
redis.call('SET', KEYS[1], 0)
redis.call('SET', KEYS[2], server .. '|0')
return 1`)

// Prime records that this Redis has served the ledger under prefix all
// along (a new deployment's first Redis, tests, the local assembly):
// nothing before now was lost (its epoch 0, settings.LedgerEpochKey), and
// the server serving now has served since (its run key: no click waits for
// records a lost Redis might have held).
func Prime(ctx context.Context, rdb redis.Scripter, prefix string) error {
	return primeScript.Run(ctx, rdb, []string{settings.LedgerEpochKey(prefix), Key(prefix)}).Err()
}
