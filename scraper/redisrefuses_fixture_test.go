package scraper_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/scraper"
)

// The scaffold of reviews 22 M D and N A/B: Redis refusing writes for a
// moment right at a send, and a fan whose replies scroll the click's
// anchor out of the chat.

// chatMessage is one message of a chat page (template A).
var chatMessage = regexp.MustCompile(`<li class="message"[^>]*>[^<]*</li>`)

// harnessErrors keeps the first error a fault injector met on the site's
// goroutines, so that the test can fail on it instead of on its effect.
type harnessErrors struct{ err atomic.Value }

func (h *harnessErrors) check(err error) {
	if err != nil {
		h.err.CompareAndSwap(nil, err)
	}
}

func (h *harnessErrors) fatalIfAny(t *testing.T) {
	t.Helper()
	if err := h.err.Load(); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// refuseRedisWritesFor makes admin's Redis refuse every write ("OOM
// command not allowed": noeviction, maxmemory 1) now, and take writes
// again after d.
func refuseRedisWritesFor(admin *redis.Client, d time.Duration, h *harnessErrors) {
	ctx := context.Background()
	h.check(admin.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	h.check(admin.ConfigSet(ctx, "maxmemory", "1").Err())
	time.AfterFunc(d, func() { h.check(admin.ConfigSet(ctx, "maxmemory", "0").Err()) })
}

// fanRepliesScrollingTheAnchor are the fan's replies; with chatShown
// messages on a page they push the creator's last message out of view.
var fanRepliesScrollingTheAnchor = []string{"omg yes", "so hot", "send more pls"}

const chatShown = 3

// chatAsAppShowsIt rewrites a chat page the way a chat web app shows it:
// the creator's messages and, once the fan replied, the fan's replies
// after them; only the latest chatShown of them (older ones load on
// scroll).
func chatAsAppShowsIt(page string, replied bool) string {
	msgs := chatMessage.FindAllString(page, -1)
	if replied {
		for _, rep := range fanRepliesScrollingTheAnchor {
			msgs = append(msgs, `<li class="message">`+rep+`</li>`)
		}
	}
	if len(msgs) > chatShown {
		msgs = msgs[len(msgs)-chatShown:]
		page = strings.Replace(page, `<li class="history-start" hidden></li>`, "", 1)
	}
	page = chatMessage.ReplaceAllString(page, "")
	return strings.Replace(page, `<li class="history-end"`, strings.Join(msgs, "")+`<li class="history-end"`, 1)
}

// deliveredInOrderNoDLQ fails unless the workflows queue drained (ok),
// creator-a's chat holds exactly texts in order and nothing was
// dead-lettered; on failure it shows the scraper's log lines holding
// any of words.
func (f *fixture) deliveredInOrderNoDLQ(t *testing.T, ok bool, texts []string, words ...string) {
	t.Helper()
	got := f.site.Texts("creator-a")
	d := f.dlq()
	var reasons []string
	for _, m := range d {
		reasons = append(reasons, aws.ToString(m.MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
	if !ok || strings.Join(got, ",") != strings.Join(texts, ",") || len(d) != 0 {
		t.Fatalf("ok %t: the site has %q (send requests %d); %d dead-lettered: %q; the scraper's word:\n%s",
			ok, got, f.site.SendRequests(), len(d), reasons, linesWith(f.logs.String(), words...))
	}
}

// answeredTexts are the two messages of answeredWhileRedisRefuses.
var answeredTexts = []string{"hi there", "did you see my pic?"}

// answeredWhileRedisRefuses runs the scenario of reviews 22 M D, N B and
// O: answeredTexts to one fan; from the second message's send request
// Redis refuses writes for redisDown and atSecondSend runs (a mark store
// fault, or nothing); the site answers that send 200 and the fan then
// replies, scrolling the click's anchor out of the chat as the app shows
// it. It runs the scraper until the queue drained (ok) or 60 s passed,
// and fails on a harness error or fewer than two send requests. With
// handOver, the task that got the 2xx stops once the mark store holds its
// Answered proof, and another task (its own process memory) takes the
// message from there.
func (f *fixture) answeredWhileRedisRefuses(t *testing.T, cfg scraper.Config, redisDown time.Duration, atSecondSend func(), handOver bool) (ok bool) {
	t.Helper()
	var h harnessErrors
	var sends atomic.Int64
	front := answeredFront(f, redisDown, atSecondSend, &sends, &h)
	f.behind(cfg, front)
	var second string
	for _, text := range answeredTexts {
		m := f.newMessage("creator-a", text)
		f.enqueue(m)
		second = m.MessageID
	}
	if handOver {
		if !f.runUntil(60*time.Second, func() bool { st, found := f.stored(second); return found && st.Mark.Answered }) {
			t.Fatalf("harness: the mark store never held the second message's Answered proof:\n%s", linesWith(f.logs.String(), "answered", "mark store"))
		}
		f.behind(cfg, front) // another task
	}
	ok = f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	h.fatalIfAny(t)
	if sends.Load() < 2 {
		t.Fatalf("harness: %d send requests", sends.Load())
	}
	return ok
}

// answeredFront is the site of answeredWhileRedisRefuses: from the second
// send request (sends counts them) Redis refuses writes for redisDown and
// atSecondSend runs; the site answers 200 and the fan then replies,
// scrolling the click's anchor out of the chat as the app shows it.
func answeredFront(f *fixture, redisDown time.Duration, atSecondSend func(), sends *atomic.Int64, h *harnessErrors) func(http.Handler) http.Handler {
	var fanReplied atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") {
				if sends.Add(1) == 2 {
					refuseRedisWritesFor(f.redis.Client(), redisDown, h)
					atSecondSend()
					origin.ServeHTTP(w, r)
					fanReplied.Store(true)
					return
				}
				origin.ServeHTTP(w, r)
				return
			}
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				serveRewritten(w, r, origin, func(page string) string { return chatAsAppShowsIt(page, fanReplied.Load()) })
				return
			}
			origin.ServeHTTP(w, r)
		})
	}
}

// markStoreRefusingWrites makes the fixture's mark store refuse every
// write (PutItem) while the returned flag is set (putFailingDDB); refused
// counts them.
func (f *fixture) markStoreRefusingWrites() (failing *atomic.Bool, refused *atomic.Int64) {
	failing, refused = new(atomic.Bool), new(atomic.Int64)
	f.marks = scraper.NewDynamoMarks(putFailingDDB{DynamoDBAPI: f.ddbCalls, failing: failing, refused: refused}, attemptsTable, time.Hour, time.Now)
	return failing, refused
}
