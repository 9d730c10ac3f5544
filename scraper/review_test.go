package scraper_test

import (
	"context"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/harness"
)

// Review of issue 22: attacks on the browser boundary's promises.

// behind makes the scraper reach the site through front (a CDN, a cache or
// a renderer between the browser and the site's origin): a new sender,
// processor and consumer on the fixture's Redis, queues and credentials.
func (f *fixture) behind(cfg scraper.Config, front func(origin http.Handler) http.Handler) {
	f.t.Helper()
	f.behindWith(cfg, front, browser.Options{DriverDir: harness.DriverDir(f.t)})
}

// behindWith is behind with the browser's options.
func (f *fixture) behindWith(cfg scraper.Config, front func(origin http.Handler) http.Handler, opts browser.Options) {
	f.t.Helper()
	f.behindWithGate(cfg, front, opts, openGate)
}

// behindWithGate is behindWith with a send gate of gateCfg.
func (f *fixture) behindWithGate(cfg scraper.Config, front func(origin http.Handler) http.Handler, opts browser.Options, gateCfg ratelimit.Config) {
	f.t.Helper()
	origin, _ := url.Parse(f.site.URL)
	srv := httptest.NewServer(front(httputil.NewSingleHostReverseProxy(origin)))
	f.t.Cleanup(srv.Close)
	sender := newSender(f.t, onlyfans.Config{BaseURL: srv.URL, Browser: opts, RecycleAfter: 20, Traces: true, Timeouts: f.timeouts})
	f.t.Cleanup(func() { _ = sender.Close() })
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	gate, err := ratelimit.NewShared(f.redis.Client(), gateWith(cfg, gateCfg), scraper.NewDynamoGateServers(f.ddb.DynamoDB, attemptsTable))
	if err != nil {
		f.t.Fatal(err)
	}
	f.proc, err = scraper.NewProcessor(cfg, sender, gate, f.sessions, f.ledger, f.marks, f.results, log,
		metrics.New(f.emf, map[string]string{"Service": "scraper"}, time.Now), time.Now)
	if err != nil {
		f.t.Fatal(err)
	}
	f.consumer = scraper.NewConsumer(f.consumerConfig(), f.aws.SQS, f.ledger, f.proc, log)
}

// rewriteChatPages changes the HTML of every chat page the front serves.
func rewriteChatPages(rewrite func(string) string) func(http.Handler) http.Handler {
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				origin.ServeHTTP(w, r)
				return
			}
			serveRewritten(w, r, origin, rewrite)
		})
	}
}

// serveRewritten serves origin's answer to r with its body rewritten.
func serveRewritten(w http.ResponseWriter, r *http.Request, origin http.Handler, rewrite func(string) string) {
	rec := httptest.NewRecorder()
	origin.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = io.WriteString(w, rewrite(rec.Body.String()))
}

func TestReviewAnUnknownSendIsFoundWhenTheChatRendersLineBreaksAsBR(t *testing.T) {
	t.Parallel()
	// GIVEN a chat page that renders a message's line breaks as <br> (as
	// most chat web apps do; the text nodes then hold no white space
	// between the lines), and a gateway answering 502 after its origin
	// committed a two-line message
	f := setup(t, testConfig())
	lines := regexp.MustCompile(`(<li class="message">)([^<]*)(</li>)`)
	f.behind(testConfig(), rewriteChatPages(func(html string) string {
		return lines.ReplaceAllStringFunc(html, func(li string) string { return strings.ReplaceAll(li, "\n", "<br>") })
	}))
	f.site.InjectFaults(fakesite.Fault{Commit: true, Status: 502})
	f.enqueue(f.newMessage("creator-a", "see you tonight\nat 9"))
	// WHEN the scraper runs
	ok := f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the read-back found the committed send: the fan has it once
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t, the site has %q\n%s", ok, got, f.logs)
	}
}

func TestReviewAnUnknownSendIsFoundWhenTheSiteDropsInvisibleCharacters(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct{ text, drop string }{
		"emoji variation selector": {"love you \u2764\ufe0f", "\ufe0f"},
		"zero-width space":         {"call\u200bme", "\u200b"},
		"soft hyphen":              {"wonder\u00adful", "\u00ad"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// GIVEN a site that stores a text without an invisible character
			// (the Key is documented as "only coarser than what the site
			// does"), and a gateway answering 502 after its origin committed
			f := setup(t, testConfig())
			f.site.StoreAs(func(s string) string { return strings.ReplaceAll(s, c.drop, "") })
			f.site.InjectFaults(fakesite.Fault{Commit: true, Status: 502})
			f.enqueue(f.newMessage("creator-a", c.text))
			// WHEN the scraper runs
			ok := f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN the fan has it once
			if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
				t.Fatalf("ok %t, the site has %q\n%s", ok, got, f.logs)
			}
		})
	}
}

func TestReviewAnUnknownSendIsNotResentWhileTheChatListLagsBehindTheCommit(t *testing.T) {
	t.Parallel()
	// GIVEN a chat list that shows a committed message 2 s after the
	// commit (the site's write path is asynchronous, or a cache serves the
	// chat), a gateway answering 502 after its origin committed, and the
	// production backoff of 1 s before an in-process retry
	cfg := testConfig()
	cfg.ServerBackoff = time.Second
	f := setup(t, cfg)
	const lag = 2 * time.Second
	f.behind(cfg, rewriteChatPages(func(page string) string {
		for _, m := range f.site.Sent() {
			if time.Since(m.At) < lag {
				page = strings.Replace(page, `<li class="message">`+template.HTMLEscapeString(m.Text)+`</li>`, "", 1)
			}
		}
		return page
	}))
	f.site.InjectFaults(fakesite.Fault{Commit: true, Status: 502})
	f.enqueue(f.newMessage("creator-a", "see you soon"))
	// WHEN the scraper runs
	ok := f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has it once
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t, the site has %q\n%s", ok, got, f.logs)
	}
}

func TestReviewASlowSiteThatRecordsLateStillSeesNoMoreThanTheLimitInAnyWindow(t *testing.T) {
	t.Parallel()
	// GIVEN a gate of 3 sends per 3 s (margin 200 ms), 4 messages of one
	// creator, and a site that takes 1.2 s on the first send and records it
	// when it gets to it (inside the 1.5 s response timeout: a clean 200;
	// production: 30 s response timeout, 2 s margin)
	f := setupWithGate(t, testConfig(), ratelimit.Config{Limit: 3, Window: 3 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"})
	f.site.InjectFaults(fakesite.Fault{Delay: 1200 * time.Millisecond})
	for i := range 4 {
		f.enqueue(f.newMessage("creator-a", "s"+strconv.Itoa(i)))
	}
	// WHEN the scraper drains them
	ok := f.runUntil(40*time.Second, func() bool { return len(f.site.Sent()) == 4 && f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN no 3 s window at the site held more than 3
	if got := f.site.MaxInWindow(3 * time.Second)["creator-a"]; !ok || got > 3 {
		t.Fatalf("ok %t, %d sends in one 3 s window at the site: %v", ok, got, f.site.Sent())
	}
}

func TestReviewAnExpiredSessionShowingTheLoginPageDeadLettersNothing(t *testing.T) {
	t.Parallel()
	// GIVEN creator-a's session expired (its chat pages show the login
	// page), and a session check that answers 200 with the login page (a
	// single-page app answering every path with its shell; how the real
	// /api2/v2/users/me answers a logged-out client is unknown)
	f := setup(t, testConfig())
	f.behind(testConfig(), func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api2/v2/users/me" {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, `<!doctype html><title>Login</title><form id="login">Log in</form>`)
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	f.compress()
	f.sessions.set("creator-a", "expired-session")
	f.enqueue(f.newMessage("creator-a", "a0"), f.newMessage("creator-a", "a1"))
	// WHEN the scraper runs for a while
	f.runUntil(20*time.Second, func() bool { return len(f.compressed.Asked()) >= 10 || f.queueCount(f.queues.Workflows.DLQURL) > 0 })
	// THEN nothing is dead-lettered: the login page already said the
	// session (not the fan) is the problem; the creator waits for a new one
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("%d of an expired session's messages dead-lettered, first: %q\n%s", len(d), aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue), f.logs)
	}
}

func TestReviewAChatPageWithoutItsComposerForEveryCreatorDeadLettersNothing(t *testing.T) {
	t.Parallel()
	// GIVEN the site serving every chat page without its composer (a
	// front-end outage: the script bundle's CDN down, a 200 maintenance
	// page) for two creators' messages
	f := setup(t, testConfig())
	f.compress()
	f.site.BreakChatPages(1000)
	f.enqueue(f.newMessage("creator-a", "a0"), f.newMessage("creator-b", "b0"))
	// WHEN the scraper runs for more receives than MaxFailures
	f.runUntil(90*time.Second, func() bool { return len(f.compressed.Asked()) >= 8 || f.queueCount(f.queues.Workflows.DLQURL) == 2 })
	// THEN nothing is dead-lettered: the same failure on every creator's
	// page is the site's, not one message's
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("%d messages dead-lettered by a site-wide broken page, first: %q", len(d), aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
}

func TestReviewOneUnauthorisedAnswerWithAGoodSessionDoesNotDeadLetterTheMessage(t *testing.T) {
	t.Parallel()
	// GIVEN a send answered 401 once (a request signature or CSRF token
	// that expired a moment ago; the session is good, the chat loaded
	// with it), then the site accepting sends again
	f := setup(t, testConfig())
	f.site.InjectFaults(fakesite.Fault{Status: 401})
	f.enqueue(f.newMessage("creator-a", "u0"), f.newMessage("creator-a", "u1"))
	// WHEN the scraper runs
	ok := f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN both are delivered: an authentication answer is no refusal
	// about the fan (blocked, deleted, not subscribed are 403/404)
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "u0,u1" {
		d := f.dlq()
		reason := ""
		if len(d) > 0 {
			reason = aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue)
		}
		t.Fatalf("ok %t, the site has %q, DLQ %d %q", ok, got, len(d), reason)
	}
}

func TestReviewABrowserThatCannotStartDeadLettersNothing(t *testing.T) {
	t.Parallel()
	// GIVEN a task whose Chromium cannot start (out of memory, /tmp full,
	// a broken image: here a binary that exits at once): no message can
	// be sent, whichever it is
	f := setup(t, testConfig())
	f.behindWith(testConfig(), func(origin http.Handler) http.Handler { return origin },
		browser.Options{DriverDir: harness.DriverDir(t), ChromiumPath: "/bin/false"})
	f.compress()
	f.enqueue(f.newMessage("creator-a", "a0"), f.newMessage("creator-b", "b0"))
	// WHEN the scraper runs for more receives than MaxFailures
	f.runUntil(60*time.Second, func() bool { return len(f.compressed.Asked()) >= 8 || f.queueCount(f.queues.Workflows.DLQURL) == 2 })
	// THEN nothing is dead-lettered: a browser that cannot start is the
	// task's outage, not one message's fault
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("%d messages dead-lettered because the browser cannot start, first: %q", len(d), aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
}

func TestReviewAnUnknownSendIsFoundWhenTheChatRendersItsHistoryAfterLoad(t *testing.T) {
	t.Parallel()
	// GIVEN a single-page chat whose history is rendered by its script a
	// moment after the page loaded (fetched from the site's API; the
	// composer is there at once; #history[data-loaded] once rendered), a fan who already has "ok", and a
	// gateway answering 502 after its origin committed another "ok"
	f := setup(t, testConfig())
	list := regexp.MustCompile(`(?s)<ul id="history">(.*?)</ul>`)
	f.behind(testConfig(), rewriteChatPages(func(page string) string {
		return list.ReplaceAllString(page, `<ul id="history"></ul><template id="later">$1</template>`+
			`<script>setTimeout(() => { const h = document.getElementById('history'); h.innerHTML = document.getElementById('later').innerHTML; h.dataset.loaded = 'true' }, 2000)</script>`)
	}))
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{Commit: true, Status: 502})
	f.enqueue(f.newMessage("creator-a", "ok"), f.newMessage("creator-a", "ok"))
	// WHEN the scraper runs
	ok := f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has "ok" twice (two messages), not three times
	if got := f.site.Texts("creator-a"); !ok || len(got) != 2 {
		t.Fatalf("ok %t, the site has %q\n%s", ok, got, f.logs)
	}
}

func TestReviewACDNBlockOfEveryRequestDoesNotPauseTheCreatorsForEver(t *testing.T) {
	t.Parallel()
	// GIVEN a CDN in front of the site answering 403 to every request for
	// a while (a bot-protection block of the task's address, with its
	// challenge page: chat pages, sends and the session check alike),
	// then letting requests through again; the sessions never changed
	f := setup(t, testConfig())
	var blocking atomic.Bool
	blocking.Store(true)
	f.behind(testConfig(), func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if blocking.Load() {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `<!doctype html><title>Attention Required!</title><p>Sorry, you have been blocked</p>`)
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	f.compress()
	f.enqueue(f.newMessage("creator-a", "a0"), f.newMessage("creator-b", "b0"))
	f.runUntil(30*time.Second, func() bool { return len(f.compressed.Asked()) >= 4 })
	// WHEN the block ends
	blocking.Store(false)
	ok := f.runUntil(40*time.Second, func() bool { return len(f.site.Sent()) == 2 })
	// THEN both creators' messages are delivered without anyone renewing
	// a session that was never bad, and nothing was dead-lettered
	if !ok || len(f.dlq()) != 0 {
		t.Fatalf("after the block: sent %v\n%s", f.site.Sent(), f.logs)
	}
}

func TestReviewRedisForgettingTheAttemptMarkOfAnUnknownSendDoesNotSendItTwice(t *testing.T) {
	t.Parallel()
	// GIVEN a site that records a send and goes down (reset) before
	// answering it, so that the read-back cannot run either, and Redis
	// losing its last writes at that moment (a failover with replication
	// lag: design section 3 says the attempt marks survive it "because the
	// recovery check reads the site itself")
	f := setup(t, testConfig())
	f.compress()
	flusher := f.redis.Client()
	var once sync.Once
	f.site.OnSent(func(fakesite.Sent) {
		once.Do(func() {
			f.site.SetOutage(fakesite.Reset)
			if err := flusher.FlushAll(context.Background()).Err(); err != nil {
				t.Error(err)
			}
			go func() { time.Sleep(3 * time.Second); f.site.SetOutage(fakesite.Up) }()
		})
	})
	f.enqueue(f.newMessage("creator-a", "sent while Redis failed over"))
	// WHEN the scraper runs through the outage and after it
	ok := f.runUntil(40*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has the message once
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t, the site has %q (%d sends)\n%s", ok, got, len(got), f.logs)
	}
}

func TestReviewAnUnknownSendIsFoundWhenTheChatShowsOnlyItsLatestMessages(t *testing.T) {
	t.Parallel()
	// GIVEN a chat page that shows the latest 3 messages (older ones load
	// on scroll, as chat web apps do), a fan who already has "ok" as the
	// oldest of them, and a gateway answering 502 after its origin
	// committed another "ok"
	f := setup(t, testConfig())
	item := regexp.MustCompile(`<li class="message">[^<]*</li>`)
	f.behind(testConfig(), rewriteChatPages(func(page string) string {
		all := item.FindAllString(page, -1)
		if len(all) <= 3 {
			return page
		}
		// A page showing only its latest messages does not say it starts
		// at the conversation's first one (the profile's historyStart).
		page = strings.Replace(page, `<li class="history-start" hidden></li>`, "", 1)
		i := 0
		return item.ReplaceAllStringFunc(page, func(li string) string {
			i++
			if i <= len(all)-3 {
				return ""
			}
			return li
		})
	}))
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{}, fakesite.Fault{}, fakesite.Fault{}, fakesite.Fault{Commit: true, Status: 502})
	f.enqueue(f.newMessage("creator-a", "hi"), f.newMessage("creator-a", "ok"), f.newMessage("creator-a", "how are you"), f.newMessage("creator-a", "thanks"), f.newMessage("creator-a", "ok"))
	// WHEN the scraper runs
	ok := f.runUntil(40*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has each message once: "ok" twice (two messages), not
	// three times
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "hi,ok,how are you,thanks,ok" {
		t.Fatalf("ok %t, the site has %q\n%s", ok, got, f.logs)
	}
}

// linesWith is the log lines holding any of parts.
func linesWith(logs string, parts ...string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		for _, p := range parts {
			if strings.Contains(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
