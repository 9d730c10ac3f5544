// A read of the chat shows it as it was when the read began: a send
// request that may still land then is not ruled out by that read, however
// late the read's answer comes (docs/design.md section 8).

package scraper_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// commitDuringASlowRead holds the first send request unanswered (the
// client times out and leaves) and commits it while serving the first read
// of the fan's chat made after it, inside the horizon: that read's page is
// rendered before the commit and handed out only once horizon has passed
// since the request arrived, as a slow origin or a far edge answers a read
// made just before a queued request lands. The commit is within the
// contract (before the horizon); only the read's answer is late. A read
// that never comes in time (a very busy machine) leaves the commit to a
// timer one second before the horizon. committed is closed once the
// origin committed it; slowRead once a read was served that way.
func commitDuringASlowRead(horizon time.Duration, committed, slowRead chan struct{}) func(http.Handler) http.Handler {
	var (
		mu     sync.Mutex
		held   *http.Request
		heldAt time.Time
		once   sync.Once
		served sync.Once
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
			first, readAt := held == nil, heldAt
			mu.Unlock()
			switch {
			case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") && first:
				body, _ := io.ReadAll(r.Body)
				queued := r.Clone(context.Background())
				queued.Body = io.NopCloser(bytes.NewReader(body))
				mu.Lock()
				held, heldAt = queued, time.Now()
				mu.Unlock()
				time.AfterFunc(horizon-time.Second, commit)
				select { // no answer: the client times out and leaves
				case <-r.Context().Done():
				case <-time.After(horizon):
				}
			case r.Method == http.MethodGet && isChatRead(r.URL.Path) && !first && time.Since(readAt) < horizon-time.Second && !closed(committed):
				rec := httptest.NewRecorder()
				origin.ServeHTTP(rec, r) // the chat as it is when the read began
				commit()
				time.Sleep(time.Until(readAt.Add(horizon + 300*time.Millisecond)))
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				served.Do(func() { close(slowRead) })
			default:
				origin.ServeHTTP(w, r)
			}
		})
	}
}

// isChatRead reports whether path reads a fan's chat: its document, or a
// single-page app's history fetch.
func isChatRead(path string) bool {
	return strings.HasPrefix(path, "/my/chats/chat/") || (strings.HasPrefix(path, "/api2/v2/chats/") && strings.HasSuffix(path, "/messages"))
}

// closed reports whether ch is closed.
func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestARequestLandingDuringAReadThatBeganInsideTheHorizonIsNotClickedAgain:
//
// Promise: every queued message reaches the site exactly once; a click
// with no answer is settled "not sent" only by a read of the chat that
// began once its request could no longer land.
//
// Fault: the send request gets no answer and the origin commits it, inside
// the horizon, while serving the read-back's first read, whose page was
// rendered before the commit and is answered only after the horizon.
// Judged by the time the read's answer came, "not in the chat" after the
// horizon passed for "not sent", and the message was clicked again: the
// fan had it twice.
func TestARequestLandingDuringAReadThatBeganInsideTheHorizonIsNotClickedAgain(t *testing.T) {
	t.Parallel()
	// GIVEN a fan's chat with an earlier message, a late-commit horizon of
	// 10 s (the next read may come up to 9 s after the click on a busy
	// machine), and a front that commits the unanswered first send request
	// during the next read of the chat and answers that read after the
	// horizon (the navigation timeout is raised so that the slow read is
	// answered, not timed out)
	const text = "landed during a slow read"
	cfg := testConfig()
	cfg.LateCommitHorizon = 10 * time.Second
	timeouts := fastSender
	timeouts.Navigation = 15 * time.Second
	f := setupWith(t, cfg, openGate, timeouts)
	f.sendAsCreator("creator-a", "fan-1", "an earlier message")
	committed, slowRead := make(chan struct{}), make(chan struct{})
	f.behind(cfg, commitDuringASlowRead(cfg.LateCommitHorizon, committed, slowRead))
	f.enqueue(f.newMessage("creator-a", text))
	// WHEN the scraper drains the queue after the request landed
	ok := f.runUntil(60*time.Second, func() bool {
		return closed(committed) && f.queueCount(f.queues.Workflows.URL) == 0
	})
	// THEN the slow read was served (its answer may trail the message's
	// settling when a busy machine timed the read out), and the fan has
	// the message once
	select {
	case <-slowRead:
	case <-time.After(cfg.LateCommitHorizon):
	}
	if !closed(slowRead) {
		t.Fatalf("no read of the chat came within the horizon after the click: the fault was not placed\n%s", f.logs)
	}
	got := f.site.Texts("creator-a")
	if !ok || strings.Join(got, ",") != "an earlier message,"+text {
		t.Fatalf("ok %t: the site has %q (%d send requests), dead-lettered %q\n%s", ok, got, f.site.SendRequests(), failureReasons(f.dlq()), f.logs)
	}
}
