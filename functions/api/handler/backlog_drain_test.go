package handler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
)

// Review of issue 23: once a creator has a message in the fallback table,
// every later message of that creator joins the table until a replay run
// catches the creator up (reserved == done). A run queues at most
// REPLAY_BATCH items for all creators together (100 every 5 minutes in the
// stack: 20 per minute for the whole platform), while each creator may add
// up to 10 per minute. So after one short SQS outage that touched more
// creators than the budget can absorb (3 creators at full rate already
// bring 150 per run against 100), the joined creators never leave the
// fallback path: the backlog grows every run, delivery waits ever longer,
// and items older than the table's 14-day TTL are deleted unsent.
//
// Scaled down: 3 creators, one message each during the outage, then each
// sends 2 per tick (well within SQS and the site's rate) and a replay run of
// budget 4 follows every tick. A correct drain (e.g. a run that catches a
// waiting creator up, bounded by time rather than a platform-wide count)
// lets new messages go straight to SQS again after the first run.
func TestAfterAnSQSOutageTheFallbackBacklogDrainsWhileCreatorsKeepSending(t *testing.T) {
	f := setup(t)
	creators := []string{"c-1", "c-2", "c-3"}
	tok := tokenWith(t, jwt.MapClaims{"sub": "user-1", "exp": time.Now().Add(time.Hour).Unix(), "creators": creators})
	send := func(creator, text string) (int, api.Result) {
		t.Helper()
		w, _ := f.send(`{"creatorId":"`+creator+`","recipientId":"fan-1","content":"`+text+`"}`, tok)
		var r api.Result
		_ = json.Unmarshal(w.Body.Bytes(), &r)
		return w.Code, r
	}
	f.proxy.Failing.Store(true)
	for _, c := range creators {
		if code, r := send(c, c+"-outage"); code != 500 || r.Status != api.StatusStoredForReplay {
			t.Fatalf("%s during the outage: %d %+v", c, code, r)
		}
	}
	f.proxy.Failing.Store(false)

	const ticks, perTick, budget = 6, 2, 4
	var pending []int
	direct := 0
	for tick := range ticks {
		for k := range perTick {
			for _, c := range creators {
				code, r := send(c, fmt.Sprintf("%s-t%d-%d", c, tick, k))
				if code != 202 {
					t.Fatalf("tick %d %s: %d %+v", tick, c, code, r)
				}
				if r.Status == api.StatusQueued {
					direct++
				}
			}
		}
		if _, err := api.Replay(context.Background(), f.deps, budget); err != nil {
			t.Fatalf("replay at tick %d: %v", tick, err)
		}
		n, err := f.store.PendingCount(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, n)
	}
	if direct == 0 || pending[len(pending)-1] > pending[0] {
		t.Fatalf("SQS is back and a replay runs every tick, yet no new message went straight to SQS in %d ticks (%d joined the fallback table) and the table's backlog after each run grew %v: the joined creators never leave the fallback path",
			ticks, ticks*perTick*len(creators)-direct, pending)
	}
}
