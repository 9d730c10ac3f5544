// Review 22 AB: "not sent" stands on a read that began after the
// late-commit horizon, but the read-back's settle (READ_BACK_SETTLE: the
// chat list may show a commit late) is measured from the first read of the
// read-back, which may have begun before the horizon.

package scraper_test

import (
	"bytes"
	"context"
	"html/template"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// commitInWindow holds the first send request unanswered (the client
// times out and leaves). Reads of the fan's chat after it are answered 429
// (Retry-After: 1: the message waits, uncounted) until refuse after base,
// the arrival of the chat read the click was made on (the attempt mark's
// ClickedAt is later than base). The origin commits the held request when
// the first read arrives from base+from on, or at base+by, whichever comes
// first: by is shorter than the late-commit horizon, so the commit is
// inside the contract. committed is closed once the origin committed it.
func commitInWindow(refuse, from, by time.Duration, committed chan struct{}) func(http.Handler) http.Handler {
	var (
		mu      sync.Mutex
		held    *http.Request
		lastGet time.Time
		once    sync.Once
	)
	return func(origin http.Handler) http.Handler {
		commit := func() {
			once.Do(func() {
				mu.Lock()
				r := held
				mu.Unlock()
				origin.ServeHTTP(httptest.NewRecorder(), r)
				close(committed)
			})
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			first, base := held == nil, lastGet
			mu.Unlock()
			read := r.Method == http.MethodGet && isChatRead(r.URL.Path)
			switch {
			case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && first:
				body, _ := io.ReadAll(r.Body)
				queued := r.Clone(context.Background())
				queued.Body = io.NopCloser(bytes.NewReader(body))
				mu.Lock()
				held = queued
				mu.Unlock()
				time.AfterFunc(by-time.Since(base), commit)
				select { // no answer: the client times out and leaves
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
				return
			case read && first:
				mu.Lock()
				lastGet = time.Now()
				mu.Unlock()
			case read && time.Since(base) < refuse:
				w.Header().Set("Retry-After", "1")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return
			case read && time.Since(base) >= from && time.Since(base) < by:
				commit()
			}
			origin.ServeHTTP(w, r)
		})
	}
}

// laggingList shows the site's commits of text lag late on chat pages (a
// chat list behind an asynchronous write path or a cache, within the
// read-back's settle).
func laggingList(f *fixture, text string, lag time.Duration) func(http.Handler) http.Handler {
	return rewriteChatPages(func(page string) string {
		for _, m := range f.site.Sent() {
			if m.Text == text && time.Since(m.At) < lag {
				page = strings.Replace(page, `<li class="message">`+template.HTMLEscapeString(m.Text)+`</li>`, "", 1)
			}
		}
		return page
	})
}

// TestRev22ABAUnansweredSendCommittedDuringTheSettleIsNotClickedAgainWhenTheChatListLags:
//
// Promise: (a) exactly once. A click with no answer is settled "not sent"
// only by a read-back that could have seen its request land: a request
// landing by the late-commit horizon, shown by a chat list that lags its
// commits by less than READ_BACK_SETTLE (docs/scraper.md: "a chat list can
// show a commit late (an asynchronous write path, a cache in front of the
// chat)"; TestReviewAnUnknownSendIsNotResentWhileTheChatListLagsBehindTheCommit).
//
// Fault: a settle of 10 s (production's default) and a horizon of 8 s
// (shorter than the response timeout + the settle: the in-process path);
// the first send request gets no answer and the origin commits it at the
// first read of the read-back 6.5 s or more after the page it was clicked
// on was served (at the latest 7.7 s after it: inside the horizon); the
// chat list shows the commit 9.5 s late (less than the settle).
//
// Observed: the read-back's reads run from ~2 s to ~12 s after the click;
// the last one began after the horizon (unruledOutFor says 0) but only ~5 s
// after the commit, so it does not show it: "not sent" stands, the message
// is clicked again in-process and the fan has it twice.
//
// Why: scraper/processor_readback.go:69-89 (readBack) measures the settle
// from the read-back's first read (`start`) and returns the last read's
// begin as readAt; unruledOutFor (processor_readback.go:100-109) compares
// that with ClickedAt + LateCommitHorizon alone. A request may land up to
// the horizon and be shown up to ReadBackSettle after it, so a read that
// began after the horizon but less than ReadBackSettle after it rules
// nothing out unless the settle itself began after the horizon (it does
// when the read-back follows mayStillLand's delay; it does not in-process,
// nor on a receive after any other wait: B).
//
// Suggested fix: let "not sent" stand only when the read-back's settle
// began at or after the horizon (return the first read's begin, not the
// last's, to unruledOutFor), or keep reading until ReadBackSettle has
// passed since max(first read, ClickedAt + horizon).
//
// Fixed: readBack returns when its first read began, and unruledOutFor lets
// "not sent" stand only for a read-back that began after the horizon (its
// settle then covers a commit landing by the horizon and shown late).
func TestRev22ABAUnansweredSendCommittedDuringTheSettleIsNotClickedAgainWhenTheChatListLags(t *testing.T) {
	t.Parallel()
	// GIVEN a fan's chat with an earlier message, a settle of 10 s, a
	// horizon of 8 s, a chat list showing a commit of the text 9.5 s late,
	// and a front that commits the unanswered first send request at a read
	// of the chat 6.5-7.7 s after the page it was clicked on was served
	const text = "committed during the settle"
	cfg := testConfig()
	cfg.ReadBackSettle = 10 * time.Second
	cfg.LateCommitHorizon = 8 * time.Second
	f := setup(t, cfg)
	f.sendAsCreator("creator-a", "fan-1", "an earlier message")
	committed := make(chan struct{})
	lagging := laggingList(f, text, 9500*time.Millisecond)
	held := commitInWindow(0, 6500*time.Millisecond, 7700*time.Millisecond, committed)
	f.behind(cfg, func(origin http.Handler) http.Handler { return held(lagging(origin)) })
	f.enqueue(f.newMessage("creator-a", text))
	// WHEN the scraper drains the queue after the request landed
	ok := f.runUntil(90*time.Second, func() bool {
		return closed(committed) && f.queueCount(f.queues.Workflows.URL) == 0
	})
	// THEN the fan has the message once
	got := f.site.Texts("creator-a")
	if !ok || strings.Join(got, ",") != "an earlier message,"+text {
		t.Fatalf("ok %t: the site has %q (%d send requests), dead-lettered %q\nsent %+v\n%s", ok, got, f.site.SendRequests(), failureReasons(f.dlq()), f.site.Sent(), f.logs)
	}
	if testing.Verbose() {
		t.Logf("sent %+v\n%s", f.site.Sent(), f.logs)
	}
}

// TestRev22ABBRedeliveredReadBackStraddlingTheHorizonDoesNotClickALaggingCommitAgain:
//
// Promise: (a) exactly once, on the redelivery path, with the test
// config's 15 s horizon and production's 10 s settle (no in-process
// re-click: the read-back right after the click is refused).
//
// Fault: the first send request gets no answer; the fan's chat answers
// 429 (Retry-After 1) to every read for 8 s after the page it was clicked
// on was served (the message waits, uncounted, a second at a time), so a
// receive's read-back begins 7 s or less before the horizon; the origin
// commits the request at the first read from 12.5 s on (at the latest at
// 14.5 s: inside the horizon); the chat list shows it 9.5 s late (less
// than the settle).
//
// Observed: "interrupted attempt did not send; sending again": the
// read-back's last read began after the horizon but less than the lag
// after the commit; the fan has the message twice.
//
// Why: as A (scraper/processor_readback.go:69-109: the settle is measured
// from a first read that may precede the horizon; unruledOutFor judges the
// last read's begin against the horizon alone). Any wait other than
// mayStillLand's (a 429, an outage's backoff, an open breaker, a crashed
// task's visibility timeout) can bring a receive within ReadBackSettle of
// the horizon.
//
// Suggested fix: as A.
//
// Fixed: as A.
func TestRev22ABBRedeliveredReadBackStraddlingTheHorizonDoesNotClickALaggingCommitAgain(t *testing.T) {
	t.Parallel()
	// GIVEN a fan's chat with an earlier message, a settle of 10 s, the
	// 15 s horizon, a chat list showing a commit of the text 9.5 s late,
	// and a front that refuses the chat's reads for 8 s after the click's
	// page, and commits the unanswered request at a read 12.5-14.5 s after
	// it
	const text = "committed as the horizon ends"
	cfg := testConfig()
	cfg.ReadBackSettle = 10 * time.Second
	f := setup(t, cfg)
	f.sendAsCreator("creator-a", "fan-1", "an earlier message")
	committed := make(chan struct{})
	lagging := laggingList(f, text, 9500*time.Millisecond)
	front := commitInWindow(8*time.Second, cfg.LateCommitHorizon-2500*time.Millisecond, cfg.LateCommitHorizon-500*time.Millisecond, committed)
	f.behind(cfg, func(origin http.Handler) http.Handler { return front(lagging(origin)) })
	f.enqueue(f.newMessage("creator-a", text))
	// WHEN the scraper drains the queue after the request landed
	ok := f.runUntil(120*time.Second, func() bool {
		return closed(committed) && f.queueCount(f.queues.Workflows.URL) == 0
	})
	// THEN the fan has the message once
	got := f.site.Texts("creator-a")
	if !ok || strings.Join(got, ",") != "an earlier message,"+text {
		t.Fatalf("ok %t: the site has %q (%d send requests), dead-lettered %q\nsent %+v\n%s", ok, got, f.site.SendRequests(), failureReasons(f.dlq()), f.site.Sent(), f.logs)
	}
	if testing.Verbose() {
		t.Logf("sent %+v\n%s", f.site.Sent(), f.logs)
	}
}
