package scraper_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/harness"
)

func TestTheGatesServerRecordAnswersEachAnnouncementWithTheServersBeforeItBesideTheMarks(t *testing.T) {
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
	// WHEN a first server is announced
	got, err := rec.Announce(ctx, "gate:fence", "p-run-id", 100, nil)
	// THEN the answer holds it alone
	if err != nil || !maps.Equal(got, map[string]int64{"p-run-id": 100}) {
		t.Fatalf("first announcement = %v, %v", got, err)
	}
	// WHEN a second server is announced, then the first again dropping it
	got, err = rec.Announce(ctx, "gate:fence", "s-run-id", 200, nil)
	if err != nil || !maps.Equal(got, map[string]int64{"p-run-id": 100, "s-run-id": 200}) {
		t.Fatalf("second announcement = %v, %v; want both servers", got, err)
	}
	got, err = rec.Announce(ctx, "gate:fence", "p-run-id", 300, map[string]int64{"s-run-id": 200, "p-run-id": 100})
	// THEN each answer is the record after its write, a dropped server
	// gone (never the announced one)
	if err != nil || !maps.Equal(got, map[string]int64{"p-run-id": 300}) {
		t.Fatalf("announcement dropping s = %v, %v; want p at 300 alone", got, err)
	}
	// AND a server announced again since the time a drop names stays
	if _, err := rec.Announce(ctx, "gate:fence", "s-run-id", 400, nil); err != nil {
		t.Fatal(err)
	}
	got, err = rec.Announce(ctx, "gate:fence", "p-run-id", 500, map[string]int64{"s-run-id": 200})
	if err != nil || !maps.Equal(got, map[string]int64{"p-run-id": 500, "s-run-id": 400}) {
		t.Fatalf("announcement dropping a stale s = %v, %v; want p at 500 and s at 400", got, err)
	}
	// AND another gate's record is its own, and a mark whose message id is
	// the gate's name is untouched
	if got, err := rec.Announce(ctx, "other:fence", "x-run-id", 5, nil); err != nil || len(got) != 1 {
		t.Fatalf("another gate's record = %v, %v; want its own server alone", got, err)
	}
	if st, found, err := marks.Get(ctx, "gate:fence"); err != nil || !found || st.Mark.Count != 3 {
		t.Fatalf("the mark beside the record = %+v, %t, %v", st, found, err)
	}
}

func TestOfTwoConcurrentAnnouncementsOfTheGatesServerRecordOneSeesTheOther(t *testing.T) {
	t.Parallel()
	// GIVEN the gate's server record on dynalite
	ddb := harness.StartDynalite(t)
	ddb.CreateTable(t, attemptsTable, scraper.AttemptsKeyAttribute)
	rec := scraper.NewDynamoGateServers(ddb.DynamoDB, attemptsTable)
	// WHEN 10 tasks announce 10 servers at once
	const n = 10
	answers := make([]map[string]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got, err := rec.Announce(context.Background(), "gate:fence", fmt.Sprint("server-", i), int64(i+1), nil)
			if err != nil {
				t.Error(err)
			}
			answers[i] = got
		})
	}
	wg.Wait()
	// THEN of every two, one's answer holds the other (the limiter's fence
	// of a failback rests on it: ratelimit.ServerRecord)
	for i := range n {
		for j := range i {
			_, iSawJ := answers[i][fmt.Sprint("server-", j)]
			_, jSawI := answers[j][fmt.Sprint("server-", i)]
			if !iSawJ && !jSawI {
				t.Fatalf("neither server-%d (%v) nor server-%d (%v) saw the other", i, answers[i], j, answers[j])
			}
		}
	}
}
