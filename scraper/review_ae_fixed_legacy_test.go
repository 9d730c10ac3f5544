package scraper_test

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/test/harness"
)

// oldVersionRecordServer is what a scraper task of the version before the
// announcement (c425d4a^, DynamoGateServers.RecordServer) writes after its
// decisions on server: a PutItem of the whole item, key + server + atUs.
func oldVersionRecordServer(t *testing.T, ddb *dynamodb.Client, name, server string, atUS int64) {
	t.Helper()
	_, err := ddb.PutItem(context.Background(), &dynamodb.PutItemInput{
		TableName: aws.String(attemptsTable),
		Item: map[string]ddbtypes.AttributeValue{
			scraper.AttemptsKeyAttribute: &ddbtypes.AttributeValueMemberS{Value: "gate-server#" + name},
			"server":                     &ddbtypes.AttributeValueMemberS{Value: server},
			"atUs":                       &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(atUS, 10)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRev22AEALegacyRecordOfAnOldVersionTaskIsNeverSeenByANewTasksAnnouncement
//
// Promise 1 (rate): never more than the gate's limit per creator in any
// rolling window, across failovers, failbacks and several scraper tasks
// (docs/design.md section 3: "The item keeps the one-server attributes
// written before (server, atUs) and reads them as one more entry, so that
// tasks of both versions see each other during a deployment").
//
// Fault: a rolling deployment (old and new tasks of the service run side
// by side for minutes). Redis S (a promoted replica) serves; a task of the
// previous version decides the creator's 2 sends on S and writes the
// record as that version does (PutItem: server=S, atUs=its time). Then a
// failback to the cut-off old primary P (its fence names P, it never saw
// S's writes), and a task of the new version (NewShared over
// DynamoGateServers on dynalite) takes the creator's next messages.
//
// Observed: the new task's announcement of P answers {P} only; it is not
// fenced and approves 2 more on P: 4 approvals in one window of 2.
//
// Why: scraper/gateservers.go announcement() writes
// "SET #s = :at, #server = :server, atUs = :at" and asks for ALL_NEW, so
// the legacy server/atUs that gateServerEntries reads back are always the
// announcer's own values, never the old task's: the "read as one more
// entry" is dead. (The other way round is broken too: the old version's
// RecordServer is a PutItem of the whole item, which wipes every srv:
// attribute the new tasks announced, so a new task's next announcement
// misses the servers announced before the old task's write; and the new
// version's own write of server/atUs, naming the announcer's server,
// hides from an old task reading server/atUs a server another new task
// announced just before: a new task announcing P after S leaves
// server=P, and an old task on P that never saw S is not fenced.)
//
// Suggested fix: read the legacy attributes as they were before the
// write: ReturnValues ALL_OLD (and add the own entry), or UPDATED_OLD for
// server/atUs beside the new srv: values (two attributes sets in one
// answer need ALL_OLD plus what was written); and do not write the
// legacy attributes with the announcer's server while old tasks may read
// them, or make old tasks' PutItem impossible (deploy a version that
// only reads first, or a new item key) so the srv: entries cannot be
// wiped.
//
// Fixed: the announcement answers the item as it was just before its
// write (ReturnValues ALL_OLD) with its own entry added, so the legacy
// attributes are the previous writer's, an old-version task's included.
func TestRev22AEALegacyRecordOfAnOldVersionTaskIsNeverSeenByANewTasksAnnouncement(t *testing.T) {
	t.Parallel()
	const limit = 2
	cfg := ratelimit.Config{Limit: limit, Window: 2 * time.Second, MaxHold: time.Second, KeyPrefix: "gate"}
	ddb := harness.StartDynalite(t)
	ddb.CreateTable(t, attemptsTable, scraper.AttemptsKeyAttribute)
	rec := scraper.NewDynamoGateServers(ddb.DynamoDB, attemptsTable)
	p, s := harness.StartRedis(t).Client(), harness.StartRedis(t).Client()
	// Both have served long ago: each fence names its own server.
	harness.PrimeFence(t, p, cfg.FenceKey())
	harness.PrimeFence(t, s, cfg.FenceKey())
	ctx := context.Background()

	// A new-version task announced P before the failover (the record's
	// srv: entry of P and the legacy attributes naming P).
	before, err := ratelimit.NewShared(p, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := before.Decide(ctx, []ratelimit.Request{{Key: "other", ID: "on-p"}}); err != nil {
		t.Fatal(err)
	}
	// Failover to S; S's own fence (its fence names P) and the record's
	// reach of P (P's time + refresh + span + MaxHold) pass, so the old
	// version, reading the record (server=P) before deciding, would not
	// be fenced on S either.
	fenceFor := cfg.Span() + cfg.MaxHold
	time.Sleep(fenceFor + fenceFor/2 + 500*time.Millisecond)

	// An old-version task decides the creator's 2 on S and writes the
	// record as it does.
	old, err := ratelimit.New(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	var serverS string
	var lastUS int64
	for i := range limit {
		ds, err := old.Decide(ctx, []ratelimit.Request{{Key: "c", ID: fmt.Sprint("s", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if !ds[0].Allowed {
			t.Fatalf("harness: old task's send %d on S = %+v", i, ds[0])
		}
		times = append(times, ds[0].At)
		lastUS = ds[0].At.UnixMicro()
	}
	// S's server name, as the scripts compute it.
	serverS, err = s.Eval(ctx, ratelimit.ServerLua+"\nreturn server", nil).Text()
	if err != nil || serverS == "" {
		t.Fatalf("harness: S's name %q, %v", serverS, err)
	}
	oldVersionRecordServer(t, ddb.DynamoDB, cfg.FenceKey(), serverS, lastUS)

	// Failback to P; a new-version task takes the creator's next messages.
	task, err := ratelimit.NewShared(p, cfg, rec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range limit {
		ds, err := task.Decide(ctx, []ratelimit.Request{{Key: "c", ID: fmt.Sprint("p", i)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("new task on P: %+v", ds[0])
		if ds[0].Allowed {
			times = append(times, ds[0].At)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < cfg.Window; j++ {
			n++
		}
		if n > limit {
			t.Fatalf("%d approvals of the creator in one %s window (limit %d): %v", n, cfg.Window, limit, times)
		}
	}
}
