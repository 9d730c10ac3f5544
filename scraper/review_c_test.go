//go:build reviewfindings

// Findings of issue 22's third review (fresh reviewer): failing tests,
// kept behind the reviewfindings tag so that main stays green.

package scraper_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
)

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
