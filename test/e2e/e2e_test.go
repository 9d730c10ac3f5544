// End-to-end tests over the local pipeline (test/local): HTTP API → rate
// limiter queue → limiter → FIFO queue → scraper process → fake OnlyFans,
// at a scaled window of 10 sends per 3 s. Each test asserts from the fake
// site's records: no rolling window over the limit for any creator, no
// duplicate, and every accepted message delivered or accounted for in a DLQ
// or the fallback table.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/devstack"
	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/test/harness"
	"github.com/huntaze/message-pipeline/test/local"
	"github.com/huntaze/message-pipeline/test/wait"
)

const (
	limit  = 10
	window = 3 * time.Second
)

func start(t *testing.T, creators []string, pollers int) (*local.Pipeline, *harness.Buffer) {
	t.Helper()
	return startWith(t, creators, pollers, nil)
}

// startWith is start with scraper settings overridden (scraperEnv: names of
// scraper/settings).
func startWith(t *testing.T, creators []string, pollers int, scraperEnv map[string]string) (*local.Pipeline, *harness.Buffer) {
	t.Helper()
	logs := &harness.Buffer{}
	// The stack's limit (10 per 60 s) with its window scaled to 3 s: every
	// margin and slack scales with it; the 15 min outage cap is 4 s here.
	p := local.Start(t, local.Options{Creators: creators, Options: devstack.Options{Window: window, OutageBackoffMax: 4 * time.Second,
		LimiterPollers: pollers, ReplayEvery: time.Second, Logs: logs, Recorder: recorder, ScraperEnv: scraperEnv}})
	if got := p.Wiring.Limiter.Limit.Count; got != limit {
		t.Fatalf("the stack's limit is %d, these tests assert %d", got, limit)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("summary:\n%s\nscraper output (tail):\n%s\nfunctions (tail):\n%s", p.Summary(), tail(p.ScraperOutput(), 4000), tail(p.FunctionsOutput(), 4000))
		}
	})
	return p, logs
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// accepted is what the API answered for each message sent.
type accepted struct {
	mu       sync.Mutex
	byID     map[string]string   // messageId -> text
	status   map[string]string   // messageId -> queued | stored_for_replay
	creators map[string][]string // creator -> texts in acceptance order
}

func newAccepted() *accepted {
	return &accepted{byID: map[string]string{}, status: map[string]string{}, creators: map[string][]string{}}
}

// send posts one message through the HTTP API and records the answer.
func (a *accepted) send(t *testing.T, p *local.Pipeline, creator, fan, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"creatorId": creator, "recipientId": fan, "content": text})
	req, _ := http.NewRequest("POST", p.APIURL+"/api/onlyfans/messages/send", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+local.Token("user-"+creator, false, creator))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("send %s: %v", text, err)
		return
	}
	defer resp.Body.Close()
	var out struct{ MessageID, Status string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 202 && !(resp.StatusCode == 500 && out.Status == "stored_for_replay") {
		t.Errorf("send %s: %d %+v", text, resp.StatusCode, out)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.byID[out.MessageID] = text
	a.status[out.MessageID] = out.Status
	a.creators[creator] = append(a.creators[creator], text)
}

// burst sends n messages per creator, creators in parallel, each creator's
// messages one after the other.
func (a *accepted) burst(t *testing.T, p *local.Pipeline, creators []string, n int, prefix string) {
	var wg sync.WaitGroup
	for _, c := range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				a.send(t, p, c, "fan-1", fmt.Sprintf("%s %s #%03d", prefix, c, i))
			}
		}()
	}
	wg.Wait()
}

func (a *accepted) total() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byID)
}

// waitDelivered waits until the site holds want messages and the queues are
// empty (bounded).
func waitDelivered(t *testing.T, p *local.Pipeline, want int, stall time.Duration) {
	t.Helper()
	// A wait bounded by the time since the site's last new send, not since
	// the start: on a loaded machine (make test runs ./scraper's browser
	// tests beside these) a send can take 4 s, and a 90 s deadline for 75
	// of them failed a run that was delivering them all (CI, stop 40).
	// stall is past the longest pause a test's faults make (the ledger's
	// patience after a Redis restart, 30 s here, then the gate's fence).
	start := time.Now()
	limit := max(10*time.Minute, 4*stall)
	if wait.WhileProgressing(stall, limit, 250*time.Millisecond, func() int { return len(p.Site.Sent()) }, func() bool {
		return len(p.Site.Sent()) >= want && p.QueueDepth(p.Queues.RateLimiter.URL) == 0 && p.QueueDepth(p.Queues.Workflows.URL) == 0
	}) {
		return
	}
	t.Fatalf("after %s (no new send for up to %s, at most %s in all): site has %d of %d\n%s",
		time.Since(start).Round(time.Second), stall, limit, len(p.Site.Sent()), want, p.Summary())
}

// dlqTexts returns the contents of both DLQs' messages (peeked, not deleted).
func dlqTexts(t *testing.T, p *local.Pipeline) []string {
	t.Helper()
	var out []string
	for _, url := range []string{p.Queues.RateLimiter.DLQURL, p.Queues.Workflows.DLQURL} {
		for range 20 {
			r, err := p.AWS.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 60})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Messages) == 0 {
				break
			}
			for _, m := range r.Messages {
				out = append(out, aws.ToString(m.Body))
			}
		}
	}
	return out
}

// checkPromises asserts the pipeline's promises from the site's records.
func checkPromises(t *testing.T, p *local.Pipeline, a *accepted, inDLQ []string) {
	t.Helper()
	for c, n := range p.Site.MaxInWindow(window) {
		if n > limit {
			t.Errorf("creator %s: %d sends in one %s window (limit %d)", c, n, window, limit)
		}
	}
	if d := p.Site.Duplicates(); len(d) > 0 {
		t.Errorf("duplicates at the site: %v", d)
	}
	delivered := map[string]bool{}
	for _, m := range p.Site.Sent() {
		delivered[m.Text] = true
	}
	dead := map[string]bool{}
	for _, body := range dlqTexts(t, p) {
		var m struct{ Content string }
		_ = json.Unmarshal([]byte(body), &m)
		dead[m.Content] = true
	}
	pending, _ := p.Fallback.PendingCount(context.Background())
	lost := 0
	for _, text := range a.byID {
		switch {
		case delivered[text] && dead[text]:
			t.Errorf("%q both delivered and dead-lettered", text)
		case delivered[text]:
		case dead[text] && slices.Contains(inDLQ, text):
		default:
			lost++
			t.Errorf("%q accepted but neither delivered nor in a DLQ (fallback pending %d)", text, pending)
		}
	}
	if want := len(a.byID) - len(inDLQ); len(p.Site.Sent()) != want {
		t.Errorf("site holds %d messages, want %d (accepted %d, dead-lettered %d)", len(p.Site.Sent()), want, len(a.byID), len(inDLQ))
	}
}

// checkOrder asserts each creator's messages reached the site in the order
// the API accepted them (one client per creator, sequential sends), leaving
// out the ones expected in a DLQ.
func checkOrder(t *testing.T, p *local.Pipeline, a *accepted, inDLQ ...string) {
	t.Helper()
	for c, accepted := range a.creators {
		var want []string
		for _, text := range accepted {
			if !slices.Contains(inDLQ, text) {
				want = append(want, text)
			}
		}
		if got := p.Site.Texts(c); !slices.Equal(got, want) {
			t.Errorf("creator %s order:\n got %v\nwant %v", c, got, want)
		}
	}
}

func TestBurstsFromThreeCreatorsKeepTheRateOrderAndEveryMessage(t *testing.T) {
	// 10 concurrent limiter pollers: the intake is FIFO, so order holds at
	// the event source's full concurrency.
	creators := []string{"creator-a", "creator-b", "creator-c"}
	p, _ := start(t, creators, 10)
	a := newAccepted()
	a.burst(t, p, creators, 15, "first")
	time.Sleep(window / 2)
	a.burst(t, p, creators, 10, "second")
	waitDelivered(t, p, a.total(), 2*time.Minute)
	checkPromises(t, p, a, nil)
	checkOrder(t, p, a)
	t.Logf("\n%s", p.Summary())
}

func TestRedisRestartedMidRun(t *testing.T) {
	creators := []string{"creator-a", "creator-b"}
	p, _ := start(t, creators, 4)
	a := newAccepted()
	a.burst(t, p, creators, 15, "before")
	time.Sleep(window)
	if err := p.Redis.Restart(); err != nil {
		t.Fatal(err)
	}
	a.burst(t, p, creators, 10, "after")
	waitDelivered(t, p, a.total(), 2*time.Minute)
	checkPromises(t, p, a, nil)
	checkOrder(t, p, a)
}

func TestRedisEmptiedTheInstantACreatorHadItsTenthSend(t *testing.T) {
	// GIVEN a creator sending 25 messages, and Redis (limiter and gate)
	// replaced by an empty one the instant the site records the 10th
	creators := []string{"creator-a"}
	p, _ := start(t, creators, 4)
	var once sync.Once
	p.Site.OnSent(func(fakesite.Sent) {
		if len(p.Site.Sent()) == limit {
			once.Do(func() {
				if err := p.Redis.Restart(); err != nil {
					t.Error(err)
				}
			})
		}
	})
	a := newAccepted()
	a.burst(t, p, creators, 25, "fenced")
	waitDelivered(t, p, a.total(), 2*time.Minute)
	// THEN no rolling window at the site holds more than 10, nothing is
	// lost or sent twice, and order holds
	checkPromises(t, p, a, nil)
	checkOrder(t, p, a)
}

func TestScraperKilledMidBatchAndRestarted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			creators := []string{"creator-a", "creator-b"}
			// A lost task leaves its in-flight messages invisible, and
			// claimed, for the last heartbeat's visibility (60 s in the
			// stack): 10 s here, renewed every 3.3 s while a task lives.
			p, _ := startWith(t, creators, 4, map[string]string{"HEARTBEAT_VISIBILITY": "10s"})
			if sig == syscall.SIGKILL {
				// A lost task leaves its in-flight messages invisible for the
				// queue's 600 s; shorten that for the test.
				_, err := p.AWS.SQS.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{
					QueueUrl: aws.String(p.Queues.Workflows.URL), Attributes: map[string]string{"VisibilityTimeout": "5"}})
				if err != nil {
					t.Fatal(err)
				}
			}
			a := newAccepted()
			a.burst(t, p, creators, 12, "msg")
			wait.Until(30*time.Second, 50*time.Millisecond, func() bool { return len(p.Site.Sent()) >= 5 })
			code := p.StopScraper(sig)
			if sig == syscall.SIGTERM && code != 0 {
				t.Errorf("scraper exit %d after SIGTERM", code)
			}
			p.StartScraper()
			waitDelivered(t, p, a.total(), 2*time.Minute)
			checkPromises(t, p, a, nil)
			checkOrder(t, p, a)
		})
	}
}

func TestSiteFaults429Storm5xxBurstsAnd4xxForOneFan(t *testing.T) {
	creators := []string{"creator-a", "creator-b"}
	p, _ := start(t, creators, 4)
	var faults []fakesite.Fault
	for range 15 {
		faults = append(faults, fakesite.Fault{Status: 429, RetryAfter: "1"})
	}
	for range 4 {
		faults = append(faults, fakesite.Fault{Status: 503})
	}
	p.Site.InjectFaults(faults...)
	a := newAccepted()
	a.burst(t, p, creators, 10, "msg")
	// one message to a fan the site refuses (4xx): it must end in the DLQ
	p.Site.RefuseFan("fan-blocked", 404)
	a.send(t, p, "creator-a", "fan-blocked", "to a fan that does not exist")
	// No send can land before all 19 faults are used up, each a browser
	// send, and the uncommitted 503s' first messages then wait the scaled
	// empty-chat patience: about 100 s on an idle machine, past 2 min on a
	// loaded one (cc62: two make test runs side by side, 0 of 20 after 2
	// min with nothing lost or dead-lettered). The stall allows 4 min.
	waitDelivered(t, p, a.total()-1, 4*time.Minute)
	time.Sleep(2 * time.Second)
	checkPromises(t, p, a, []string{"to a fan that does not exist"})
	checkOrder(t, p, a, "to a fan that does not exist")
}

func TestAPIQueueOutageFallsBackThenReplays(t *testing.T) {
	creators := []string{"creator-a"}
	p, _ := start(t, creators, 2)
	a := newAccepted()
	p.SQSFault.Failing.Store(true)
	a.burst(t, p, creators, 5, "during outage")
	stored := 0
	for _, s := range a.status {
		if s == "stored_for_replay" {
			stored++
		}
	}
	if stored != 5 {
		t.Fatalf("%d of 5 stored for replay", stored)
	}
	p.SQSFault.Failing.Store(false)
	a.burst(t, p, creators, 5, "after outage")
	waitDelivered(t, p, a.total(), 2*time.Minute)
	checkPromises(t, p, a, nil)
	if n, _ := p.Fallback.PendingCount(context.Background()); n != 0 {
		t.Fatalf("%d still pending in the fallback table", n)
	}
}

func TestPoisonPayloadInjectedIntoTheQueue(t *testing.T) {
	creators := []string{"creator-a"}
	p, logs := start(t, creators, 2)
	a := newAccepted()
	if _, err := p.AWS.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(p.Queues.RateLimiter.URL), MessageBody: aws.String(`{"content":"no ids at all"}`),
		MessageGroupId: aws.String("creator-a"), MessageDeduplicationId: aws.String("poison-1")}); err != nil {
		t.Fatal(err)
	}
	a.burst(t, p, creators, 5, "good")
	waitDelivered(t, p, a.total(), 2*time.Minute)
	dead := dlqTexts(t, p) // read first: reading hides them for a minute
	checkPromises(t, p, a, nil)
	if len(dead) != 1 || !strings.Contains(dead[0], "no ids at all") || !strings.Contains(logs.String(), "invalid record moved to the DLQ") {
		t.Fatalf("DLQ %v", dead)
	}
}
