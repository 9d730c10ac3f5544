package scraper_test

import (
	"context"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/harness"
)

func TestTheGatesServerRecordReadsBackItsLastWriteBesideTheMarks(t *testing.T) {
	t.Parallel()
	// GIVEN the attempts table (dynalite) holding a message's mark, and the
	// gate's server record on it
	ddb := harness.StartDynalite(t)
	ddb.CreateTable(t, attemptsTable, scraper.AttemptsKeyAttribute)
	marks := scraper.NewDynamoMarks(ddb.DynamoDB, attemptsTable, time.Hour, time.Now)
	if err := marks.Put(context.Background(), "gate:fence", "creator-a", onlyfans.Mark{Count: 3}); err != nil {
		t.Fatal(err)
	}
	rec := scraper.NewDynamoGateServers(ddb.DynamoDB, attemptsTable)
	ctx := context.Background()
	// WHEN nothing was written yet
	server, at, err := rec.LastServer(ctx, "gate:fence")
	// THEN it names no server
	if err != nil || server != "" || at != 0 {
		t.Fatalf("empty record = %q, %d, %v", server, at, err)
	}
	// WHEN two decisions' servers are written
	for _, w := range []struct {
		server string
		at     int64
	}{{"p-run-id", 100}, {"s-run-id", 200}} {
		if err := rec.RecordServer(ctx, "gate:fence", w.server, w.at); err != nil {
			t.Fatal(err)
		}
	}
	// THEN the read gives the last one, and another gate's record is its own
	if server, at, err := rec.LastServer(ctx, "gate:fence"); err != nil || server != "s-run-id" || at != 200 {
		t.Fatalf("record = %q, %d, %v; want s-run-id, 200", server, at, err)
	}
	if server, _, err := rec.LastServer(ctx, "other:fence"); err != nil || server != "" {
		t.Fatalf("another gate's record = %q, %v; want none", server, err)
	}
	// AND a mark whose message id is the gate's name is untouched
	if st, found, err := marks.Get(ctx, "gate:fence"); err != nil || !found || st.Mark.Count != 3 {
		t.Fatalf("the mark beside the record = %+v, %t, %v", st, found, err)
	}
}
