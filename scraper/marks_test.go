package scraper_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/browserharness"
	"github.com/huntaze/message-pipeline/test/harness"
	"github.com/huntaze/message-pipeline/test/wait"
)

// Attacks on the attempt mark: Redis forgetting it, the anchor of a
// read-back going away, identical texts back to back, two tasks.

// countingDDB counts the mark store's DynamoDB calls (the real dynalite
// answers them).
type countingDDB struct {
	scraper.DynamoDBAPI
	mu sync.Mutex
	n  map[string]int
}

func (c *countingDDB) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[op]++
}

func (c *countingDDB) calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

func (c *countingDDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.add("GetItem")
	return c.DynamoDBAPI.GetItem(ctx, in, o...)
}

func (c *countingDDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.add("PutItem")
	return c.DynamoDBAPI.PutItem(ctx, in, o...)
}

func (c *countingDDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	c.add("DeleteItem")
	return c.DynamoDBAPI.DeleteItem(ctx, in, o...)
}

// newTask is another scraper task on the fixture's queues, Redis, mark
// store and site: its own browser, processor and process memory.
func (f *fixture) newTask(name string, cfg scraper.Config, profile onlyfans.Profile) (*scraper.Processor, *scraper.Consumer) {
	f.t.Helper()
	sender := newSender(f.t, onlyfans.Config{BaseURL: f.site.URL, Profile: profile, Browser: browser.Options{DriverDir: harness.DriverDir(f.t)},
		RecycleAfter: 20, Traces: true, Timeouts: fastSender})
	f.t.Cleanup(func() { _ = sender.Close() })
	log := slog.New(slog.NewJSONHandler(f.logs, nil)).With("task", name)
	gate, err := ratelimit.New(f.redis.Client(), openGate)
	if err != nil {
		f.t.Fatal(err)
	}
	proc, err := scraper.NewProcessor(cfg, sender, gate, f.sessions, f.ledger, f.marks, f.results, log,
		metrics.New(f.emf, map[string]string{"Service": "scraper"}, time.Now), time.Now)
	if err != nil {
		f.t.Fatal(err)
	}
	return proc, scraper.NewConsumer(f.consumerConfig(), f.aws.SQS, f.ledger, proc, log)
}

// withIDs makes the site's chat messages carry its ids and the scraper's
// profile read them (historyId).
func (f *fixture) withIDs(cfg scraper.Config) {
	f.t.Helper()
	f.site.ShowMessageIDs(true)
	profile := browserharness.SiteProfile()
	profile.HistoryID = "data-id"
	f.proc, f.consumer = f.newTask("ids", cfg, profile)
}

// storedMark reports whether the mark store holds an attempt mark of id
// (read uncounted).
func (f *fixture) storedMark(id string) bool {
	f.t.Helper()
	st, found := f.stored(id)
	return found && !st.Sent
}

// stored reads the mark store's item of id, uncounted.
func (f *fixture) stored(id string) (scraper.Stored, bool) {
	f.t.Helper()
	st, found, err := scraper.NewDynamoMarks(f.ddb.DynamoDB, attemptsTable, time.Hour, time.Now).Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return st, found
}

func TestAnUnresolvedClicksMarkOutlivesRedisAndTheTaskThatClicked(t *testing.T) {
	t.Parallel()
	// GIVEN a site that records a send and then refuses every connection
	// before answering it, so that its read-back cannot run either
	f := setup(t, testConfig())
	var once sync.Once
	f.site.OnSent(func(fakesite.Sent) { once.Do(func() { f.site.SetOutage(fakesite.Refused) }) })
	m := f.newMessage("creator-a", "kept where Redis cannot lose it")
	f.enqueue(m)
	// WHEN one task clicks it and lets it go with its outcome unknown
	if !f.runUntil(30*time.Second, func() bool { return f.storedMark(m.MessageID) }) {
		t.Fatalf("no mark stored\n%s", f.logs)
	}
	// AND Redis then loses everything (a node replaced empty), the site
	// comes back, and another task (its own browser and memory) receives it
	if err := f.redis.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	f.site.SetOutage(fakesite.Up)
	_, f.consumer = f.newTask("two", testConfig(), browserharness.SiteProfile())
	ok := f.runUntil(40*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has it once: the other task read the chat back from the
	// stored mark instead of clicking
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 || f.site.SendRequests() != 1 {
		t.Fatalf("ok %t, the site has %q after %d send requests\n%s", ok, got, f.site.SendRequests(), f.logs)
	}
	recovered := false
	for _, line := range strings.Split(f.logs.String(), "\n") {
		recovered = recovered || strings.Contains(line, `"task":"two"`) && strings.Contains(line, "attempt mark found in the mark store, not in Redis")
	}
	if !recovered || !strings.Contains(f.logs.String(), "found in the chat after an interrupted attempt") {
		t.Fatalf("not recovered from the stored mark:\n%s", f.logs)
	}
	// AND the settled attempt mark is gone from the store, replaced by
	// the message's sent mark (one PutItem, no DeleteItem)
	if st, found := f.stored(m.MessageID); !found || !st.Sent {
		t.Fatalf("stored %+v (found %t), want the sent mark", st, found)
	}
	calls := f.ddbCalls.calls()
	if calls["PutItem"] < 2 || calls["GetItem"] < 1 || calls["DeleteItem"] != 0 {
		t.Fatalf("mark store calls %v", calls)
	}
}

func TestAnUnknownSendWhoseAnchorIsDeletedIsNeverClickedAgainAndWaitsInTheDLQWithItsReason(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, earlier string
		ids           bool
	}{
		// Without ids the anchor is the texts shown last ("hi").
		{"texts", "hi", false},
		// With the site's ids even an identical earlier text, deleted as
		// the new copy arrives (the count and the texts look unchanged),
		// is told apart.
		{"ids, an identical text in its place", "ok", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// GIVEN a fan who already has c.earlier from this creator, and a
			// gateway answering 502 after its origin committed "ok", while
			// the creator deletes that earlier message (the one shown last
			// at the click)
			cfg := testConfig()
			f := setup(t, cfg)
			if c.ids {
				f.withIDs(cfg)
			}
			f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{Commit: true, Status: 502})
			f.site.OnSent(func(s fakesite.Sent) {
				if s.ID == "m2" {
					f.site.DeleteSent("m1")
				}
			})
			f.enqueue(f.newMessage("creator-a", c.earlier), f.newMessage("creator-a", "ok"))
			// WHEN the scraper runs across redeliveries
			ok := f.runUntil(40*time.Second, func() bool {
				return f.queueCount(f.queues.Workflows.URL) == 0 && f.queueCount(f.queues.Workflows.DLQURL) == 1
			})
			// THEN "ok" reached the site once: the read-back could not tell,
			// so nothing clicked it again
			if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != c.earlier+",ok" || f.site.SendRequests() != 2 {
				t.Fatalf("ok %t, the site has %q after %d send requests\n%s", ok, got, f.site.SendRequests(), f.logs)
			}
			// AND it waits for an operator in the DLQ with its reason
			dlq := f.dlq()
			if reason := aws.ToString(dlq[0].MessageAttributes[scraper.AttrFailureReason].StringValue); !strings.Contains(reason, scraper.ClassOutcomeUnknown) || !strings.Contains(reason, "no longer shown") {
				t.Fatalf("reason %q", reason)
			}
		})
	}
}

func TestIdenticalTextsBackToBackInAChatShowingItsLatestTwoAreEachSentOnce(t *testing.T) {
	t.Parallel()
	// GIVEN a chat page that shows the latest 2 messages with the site's
	// ids, five "ok" of one creator, and their sends meeting a commit then
	// 502, a 502 that did not commit, a commit then a dropped connection
	// and a commit then 504
	cfg := shortHorizon()
	f := setup(t, cfg)
	f.site.ShowLatest(2)
	f.withIDs(cfg)
	f.site.InjectFaults(fakesite.Fault{Commit: true, Status: 502}, fakesite.Fault{Status: 502}, fakesite.Fault{},
		fakesite.Fault{Commit: true, Drop: true}, fakesite.Fault{Commit: true, Status: 504}, fakesite.Fault{})
	for range 5 {
		f.enqueue(f.newMessage("creator-a", "ok"))
	}
	// WHEN the scraper runs
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has five "ok", from six send requests (the one that did
	// not commit was clicked again after its read-back), nothing in the DLQ
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "ok,ok,ok,ok,ok" || f.site.SendRequests() != 6 || len(f.dlq()) != 0 {
		t.Fatalf("ok %t, the site has %q after %d send requests\n%s", ok, got, f.site.SendRequests(), f.logs)
	}
	// AND clicks settled in their own processing cost the mark store one
	// call per message, its sent mark's PutItem (the hot path: no read, no
	// attempt mark, no delete); the 502 that did not commit, held to the
	// late-commit horizon like no answer, adds its attempt mark's PutItem
	// (its sent mark replaces it: the same item) when it waits for the
	// horizon in another receive; on a loaded machine its read-back can
	// come after the horizon already (no wait, no attempt mark): 5 or 6;
	// the receive after such a wait reads the mark store once before its
	// read-back (was the click found sent? review 22 M): one GetItem
	// exactly when there were 6
	calls := f.ddbCalls.calls()
	if puts := calls["PutItem"]; puts < 5 || puts > 6 || calls["GetItem"] != puts-5 || calls["DeleteItem"] != 0 || len(calls) > 2 {
		t.Fatalf("mark store calls %v", calls)
	}
}

func TestARunOfIdenticalTextsTheChatCannotTellApartIsNeverSentTwice(t *testing.T) {
	t.Parallel()
	// GIVEN a chat page that shows the latest 2 messages, without ids, a
	// fan who has "ok" twice from this creator, and a third "ok" answered
	// 502 (not committed: the chat looks the same either way)
	f := setup(t, testConfig())
	f.site.ShowLatest(2)
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{}, fakesite.Fault{Status: 502})
	for range 3 {
		f.enqueue(f.newMessage("creator-a", "ok"))
	}
	// WHEN the scraper runs across redeliveries
	ok := f.runUntil(40*time.Second, func() bool {
		return f.queueCount(f.queues.Workflows.URL) == 0 && f.queueCount(f.queues.Workflows.DLQURL) == 1
	})
	// THEN the third was clicked once and never again (its read-back is
	// Unknown, never "not sent"), and it waits in the DLQ with its reason
	if got := f.site.Texts("creator-a"); !ok || len(got) != 2 || f.site.SendRequests() != 3 {
		t.Fatalf("ok %t, the site has %q after %d send requests\n%s", ok, got, f.site.SendRequests(), f.logs)
	}
	if reason := aws.ToString(f.dlq()[0].MessageAttributes[scraper.AttrFailureReason].StringValue); !strings.Contains(reason, "ways that disagree") {
		t.Fatalf("reason %q", reason)
	}
}

func TestTwoTasksThroughAnOutageAndARedisLossSendEachIdenticalTextOnceInOrder(t *testing.T) {
	t.Parallel()
	// GIVEN two tasks, two creators each queuing "ok", "ok", "see you",
	// sends that meet a commit then a dropped connection and a commit then
	// 502, and, the instant the site records its third send, the site
	// resetting every connection for 3 s while Redis loses everything
	cfg := testConfig()
	f := setup(t, cfg)
	flusher := f.redis.Client()
	var once sync.Once
	f.site.OnSent(func(fakesite.Sent) {
		if len(f.site.Sent()) == 3 {
			once.Do(func() {
				f.site.SetOutage(fakesite.Reset)
				if err := flusher.FlushAll(context.Background()).Err(); err != nil {
					t.Error(err)
				}
				go func() { time.Sleep(3 * time.Second); f.site.SetOutage(fakesite.Up) }()
			})
		}
	})
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{Commit: true, Drop: true}, fakesite.Fault{Commit: true, Status: 502})
	for _, text := range []string{"ok", "ok", "see you"} {
		f.enqueue(f.newMessage("creator-a", text), f.newMessage("creator-b", text))
	}
	_, one := f.newTask("one", cfg, browserharness.SiteProfile())
	_, two := f.newTask("two", cfg, browserharness.SiteProfile())
	// WHEN both consume until the queue is empty
	stop, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range []*scraper.Consumer{one, two} {
		wg.Add(1)
		go func() { defer wg.Done(); c.Run(stop, context.Background()) }()
	}
	// (the assertions below say what is missing if the queue never drains)
	wait.Until(90*time.Second, 50*time.Millisecond, func() bool {
		return len(f.site.Sent()) >= 6 && f.queueCount(f.queues.Workflows.URL) == 0
	})
	cancel()
	wg.Wait()
	// THEN each creator's fan has each message once, in order, and
	// nothing is in the DLQ
	for _, c := range []string{"creator-a", "creator-b"} {
		if got := strings.Join(f.site.Texts(c), ","); got != "ok,ok,see you" {
			t.Errorf("%s: the site has %q", c, got)
		}
	}
	if n := len(f.dlq()); n != 0 || t.Failed() {
		t.Fatalf("%d in the DLQ\n%s", n, f.logs)
	}
}

func TestAMarkNotAnsweredNeverReplacesAStoredAnsweredOne(t *testing.T) {
	t.Parallel()
	// GIVEN a mark store (dynalite) holding a click's Answered mark
	marks := dynaliteMarks(t)
	ctx := context.Background()
	if err := marks.Put(ctx, "m1", "creator-a", onlyfans.Mark{Count: 2, Answered: true}); err != nil {
		t.Fatal(err)
	}
	// WHEN a processing that holds only the mark from before the click puts it
	if err := marks.Put(ctx, "m1", "creator-a", onlyfans.Mark{Count: 2}); err != nil {
		t.Fatal(err)
	}
	// THEN the stored mark still says the click was found sent
	st, found, err := marks.Get(ctx, "m1")
	if err != nil || !found || !st.Mark.Answered {
		t.Fatalf("stored %+v found %t err %v", st, found, err)
	}
	// AND a mark that is not Answered is written where none is stored
	if err := marks.Put(ctx, "m2", "creator-a", onlyfans.Mark{Count: 1}); err != nil {
		t.Fatal(err)
	}
	if st, found, _ := marks.Get(ctx, "m2"); !found || st.Mark.Answered || st.Mark.Count != 1 {
		t.Fatalf("m2 stored %+v found %t", st, found)
	}
}

func TestASettledClickDeletesOnlyItsOwnOrAnEarlierMark(t *testing.T) {
	t.Parallel()
	// GIVEN a mark store (dynalite) holding another processing's click made at 200
	marks := dynaliteMarks(t)
	ctx := context.Background()
	stored := func(id string) (scraper.Stored, bool) {
		t.Helper()
		st, found, err := marks.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return st, found
	}
	if err := marks.Put(ctx, "m1", "creator-a", onlyfans.Mark{Count: 2, ClickedAt: 200}); err != nil {
		t.Fatal(err)
	}
	// WHEN a processing that settled its own click made at 100 deletes
	if err := marks.Delete(ctx, "m1", 100); err != nil {
		t.Fatal(err)
	}
	// THEN the later click's mark stays (review 22 T A)
	if st, found := stored("m1"); !found || st.Mark.ClickedAt != 200 {
		t.Fatalf("later mark gone: %+v found %t", st, found)
	}
	// AND the processing that settled the click at 200 deletes it
	if err := marks.Delete(ctx, "m1", 200); err != nil {
		t.Fatal(err)
	}
	if st, found := stored("m1"); found {
		t.Fatalf("settled mark kept: %+v", st)
	}
	// AND neither a sent mark nor an Answered one is ever deleted by a settled click
	if err := marks.PutSent(ctx, "m2", "creator-a"); err != nil {
		t.Fatal(err)
	}
	if err := marks.Put(ctx, "m3", "creator-a", onlyfans.Mark{Count: 1, ClickedAt: 50, Answered: true}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"m2", "m3"} {
		if err := marks.Delete(ctx, id, 1<<62); err != nil {
			t.Fatal(err)
		}
	}
	if st, found := stored("m2"); !found || !st.Sent {
		t.Fatalf("sent mark deleted: %+v found %t", st, found)
	}
	if st, found := stored("m3"); !found || !st.Mark.Answered {
		t.Fatalf("answered mark deleted: %+v found %t", st, found)
	}
}

func TestAPutNeverReplacesASentMarkOrALaterClicksMark(t *testing.T) {
	t.Parallel()
	// GIVEN a mark store (dynalite) holding a sent mark and another processing's click made at 200
	marks := dynaliteMarks(t)
	ctx := context.Background()
	stored := func(id string) scraper.Stored {
		t.Helper()
		st, found, err := marks.Get(ctx, id)
		if err != nil || !found {
			t.Fatalf("%s: found %t err %v", id, found, err)
		}
		return st
	}
	if err := marks.PutSent(ctx, "m1", "creator-a"); err != nil {
		t.Fatal(err)
	}
	if err := marks.Put(ctx, "m2", "creator-a", onlyfans.Mark{Count: 2, ClickedAt: 200}); err != nil {
		t.Fatal(err)
	}
	// WHEN a processing holding an older click's mark (made at 100) puts it, plain and Answered
	for _, id := range []string{"m1", "m2"} {
		if err := marks.Put(ctx, id, "creator-a", onlyfans.Mark{Count: 1, ClickedAt: 100}); err != nil {
			t.Fatal(err)
		}
	}
	if err := marks.Put(ctx, "m1", "creator-a", onlyfans.Mark{Count: 1, ClickedAt: 100, Answered: true}); err != nil {
		t.Fatal(err)
	}
	// THEN the sent mark stays sent (review 22 U B) and the later click's mark stays (review 22 U A)
	if st := stored("m1"); !st.Sent {
		t.Fatalf("sent mark replaced: %+v", st)
	}
	if st := stored("m2"); st.Mark.ClickedAt != 200 || st.Mark.Count != 2 {
		t.Fatalf("later click's mark replaced: %+v", st)
	}
	// AND a later click's mark (made at 300) replaces it, and so does its Answered mark
	if err := marks.Put(ctx, "m2", "creator-a", onlyfans.Mark{Count: 3, ClickedAt: 300}); err != nil {
		t.Fatal(err)
	}
	if st := stored("m2"); st.Mark.ClickedAt != 300 {
		t.Fatalf("a later click's mark not written: %+v", st)
	}
	if err := marks.Put(ctx, "m2", "creator-a", onlyfans.Mark{Count: 3, ClickedAt: 300, Answered: true}); err != nil {
		t.Fatal(err)
	}
	if st := stored("m2"); !st.Mark.Answered {
		t.Fatalf("the click's Answered mark not written: %+v", st)
	}
}

// dynaliteMarks is a mark store on its own dynalite.
func dynaliteMarks(t *testing.T) *scraper.DynamoMarks {
	ddb := harness.StartDynalite(t)
	ddb.CreateTable(t, attemptsTable, scraper.AttemptsKeyAttribute)
	return scraper.NewDynamoMarks(ddb.DynamoDB, attemptsTable, time.Hour, time.Now)
}
