//go:build reviewfindings

// Findings of issue 22's third review (fresh reviewer): failing tests,
// kept behind the reviewfindings tag so that main stays green.

package scraper_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/harness"
)

// commitAfterTheClientLeft holds the first send request at a front (an
// origin's overloaded request queue) until the client gave up, and only
// later hands it to the origin, which commits it: a real origin does not
// stop processing when its client disconnects. done is closed once the
// origin committed it.
func commitAfterTheClientLeft(later time.Duration, done chan struct{}) func(http.Handler) http.Handler {
	var taken atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") || !taken.CompareAndSwap(false, true) {
				origin.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			queued := r.Clone(context.Background())
			queued.Body = io.NopCloser(bytes.NewReader(body))
			go func() {
				defer close(done)
				time.Sleep(later)
				origin.ServeHTTP(httptest.NewRecorder(), queued)
			}()
			select { // no answer: the client times out and leaves
			case <-r.Context().Done():
			case <-time.After(later):
			}
		})
	}
}

// TestRev22CAHangingSiteThatCommitsAfterTheClientLeftGetsTheMessageOnce:
//
// Promise: every queued message reaches the site exactly once; a hanging
// site is an outage whose unknown clicks are settled only by a read-back.
//
// Fault: the site hangs (an overloaded origin queueing requests): the send
// request gets no answer, the scraper's request times out, and the origin
// processes and commits the queued request later, after the read-back's
// settle (production: 30 s response timeout + 10 s settle; an origin's
// backlog in an incident easily holds a request longer).
//
// Observed: the read-back finds no copy yet, settles "not sent" and the
// message is clicked again in-process (ServerAttempts); the second send is
// answered, and then the first, still queued at the origin, commits: the
// fan has the message twice.
//
// A correct system does not take "not in the chat yet" as "not sent" for
// a request that may still be in flight at the origin (no answer at all):
// it keeps the attempt mark and reads back again later (a redelivery with a
// growing delay), or clicks again only once the request can no longer land.
func TestRev22CAHangingSiteThatCommitsAfterTheClientLeftGetsTheMessageOnce(t *testing.T) {
	// GIVEN a front whose first send request is answered never and
	// committed by the origin 12 s later
	cfg := testConfig()
	f := setup(t, cfg)
	committed := make(chan struct{})
	f.behind(cfg, commitAfterTheClientLeft(12*time.Second, committed))
	m := f.newMessage("creator-a", "sent into a hanging origin")
	f.enqueue(m)
	// WHEN the scraper runs until the queue is empty and the held request
	// has landed
	ok := f.runUntil(60*time.Second, func() bool {
		select {
		case <-committed:
			return f.queueCount(f.queues.Workflows.URL) == 0
		default:
			return false
		}
	})
	// THEN the fan has it once
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t: the fan has %q (%d send requests at the origin)\n%s", ok, got, f.site.SendRequests(), f.logs)
	}
}

// holdFirstSendUntil is commitAfterTheClientLeft with the moment chosen by
// the test: the held request reaches the origin when release is closed.
func holdFirstSendUntil(release <-chan struct{}) func(http.Handler) http.Handler {
	var taken atomic.Bool
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/api2/v2/chats/") || !taken.CompareAndSwap(false, true) {
				origin.ServeHTTP(w, r)
				return
			}
			body, _ := io.ReadAll(r.Body)
			queued := r.Clone(context.Background())
			queued.Body = io.NopCloser(bytes.NewReader(body))
			go func() {
				select {
				case <-release:
				case <-time.After(60 * time.Second):
				}
				origin.ServeHTTP(httptest.NewRecorder(), queued)
			}()
			<-r.Context().Done() // no answer: the client times out and leaves
		})
	}
}

// behindGate is behind with a gate of gateCfg (its fence primed by
// setupWithGate).
func (f *fixture) behindGate(cfg scraper.Config, gateCfg ratelimit.Config, front func(http.Handler) http.Handler) {
	f.t.Helper()
	origin, _ := url.Parse(f.site.URL)
	srv := httptest.NewServer(front(httputil.NewSingleHostReverseProxy(origin)))
	f.t.Cleanup(srv.Close)
	sender := newSender(f.t, onlyfans.Config{BaseURL: srv.URL, Browser: browser.Options{DriverDir: harness.DriverDir(f.t)}, RecycleAfter: 20, Traces: true, Timeouts: fastSender})
	f.t.Cleanup(func() { _ = sender.Close() })
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	gate, err := ratelimit.New(f.redis.Client(), gateCfg)
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

// TestRev22CASendThatLandsLateAtAHangingOriginKeepsTheSiteUnderTheLimit:
//
// Promise: never more than the limit per window per creator at the site;
// the gate is charged for every request the site may have accepted, for
// as long as it may land.
//
// Fault: a gate of 2 sends per 2 s; the first send request hangs at the
// origin (no answer, the client times out) and the origin commits it right
// after it recorded two later sends of the same creator.
//
// Observed: the hung request's token was restamped when the client gave
// up and left the window; the creator's later sends (the read-back's "not
// sent" re-click and the next message) are admitted, and the late commit
// lands beside them: 3 (or more) in one 2 s window at the site. Even
// without the re-click (TestRev22CAHanging...), the late commit plus two
// admitted sends overfill the window.
//
// A correct system keeps a request with no answer charged to the gate (and
// the creator's next sends waiting) until it can no longer land.
func TestRev22CASendThatLandsLateAtAHangingOriginKeepsTheSiteUnderTheLimit(t *testing.T) {
	gateCfg := ratelimit.Config{Limit: 2, Window: 2 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"}
	cfg := testConfig()
	f := setupWithGate(t, cfg, gateCfg)
	release := make(chan struct{})
	var once sync.Once
	f.site.OnSent(func(fakesite.Sent) {
		if len(f.site.Sent()) == 2 {
			once.Do(func() { close(release) })
		}
	})
	f.behindGate(cfg, gateCfg, holdFirstSendUntil(release))
	for i := range 4 {
		f.enqueue(f.newMessage("creator-a", fmt.Sprint("w", i)))
	}
	// WHEN the scraper drains them and the held request has landed
	ok := f.runUntil(60*time.Second, func() bool {
		return len(f.site.Sent()) >= 5 && f.queueCount(f.queues.Workflows.URL) == 0
	})
	// THEN no 2 s window at the site held more than 2
	if got := f.site.MaxInWindow(2 * time.Second)["creator-a"]; !ok || got > 2 {
		t.Fatalf("ok %t: %d sends in one 2 s window at the site (limit 2); the site has %q\n%s", ok, got, f.site.Texts("creator-a"), f.site.Summary([]string{"creator-a"}, 2, 2*time.Second))
	}
}
