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

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
)

// brokenChatFor serves one fan's chat page broken (the way fix wants) and
// every other page as the origin does.
func brokenChatFor(fan string, fix func(w http.ResponseWriter, html string)) func(http.Handler) http.Handler {
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/my/chats/chat/"+fan {
				origin.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			origin.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				if k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			fix(w, rec.Body.String())
		})
	}
}

// TestRev22COneFansBrokenChatDoesNotStopTheCreatorsOtherMessages:
//
// Promise: a fault about one fan stays with that fan; the creator's other
// messages keep flowing, and nothing reaches a DLQ without a
// failure_reason (maxReceiveCount is a backstop that must not be hit).
//
// Fault: only one fan's chat is broken, the rest of the site works: the
// chat of a fan who deleted their account shows no composer; one
// conversation's page answers 500 every time (a corrupt thread); one
// chat's history never renders. The session check and every other chat
// answer normally.
//
// Observed: each is read as the whole site's outage (ErrSiteDown): the
// message waits uncounted for ever (a growing delay capped at 15 min,
// until maxReceiveCount 1000 moves it to the DLQ with no failure_reason,
// about 10 days), and since a creator's messages are one FIFO group, every
// later message of that creator to any fan waits behind it.
//
// A correct system tells a one-fan fault from an outage (the session check
// page or another chat renders) and, after MaxFailures counted failures,
// dead-letters that message with its reason, so the creator's message to
// a working chat is delivered.
func TestRev22COneFansBrokenChatDoesNotStopTheCreatorsOtherMessages(t *testing.T) {
	for _, c := range []struct {
		name string
		fix  func(w http.ResponseWriter, html string)
	}{
		{"no composer (fan account deleted)", func(w http.ResponseWriter, html string) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, strings.Replace(html, `<textarea id="message-input" aria-label="Message"></textarea>`, `<p>This user is unavailable</p>`, 1))
		}},
		{"chat page 500 for this fan only", func(w http.ResponseWriter, _ string) {
			http.Error(w, "conversation failed to load", http.StatusInternalServerError)
		}},
		{"history never renders for this fan only", func(w http.ResponseWriter, html string) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, strings.Replace(html, `<li class="history-end" hidden></li>`, "", 1))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// GIVEN creator-a's message to fan-gone, whose chat alone is
			// broken, then one to fan-1, whose chat works
			cfg := testConfig()
			f := setup(t, cfg)
			f.behind(cfg, brokenChatFor("fan-gone", c.fix))
			f.compress()
			f.enqueue(f.messageTo("creator-a", "fan-gone", "to the gone fan"), f.messageTo("creator-a", "fan-1", "to a working chat"))
			// WHEN the scraper runs for 12 visibility changes (MaxFailures
			// is 3; in production that is about an hour of delays)
			f.runUntil(120*time.Second, func() bool {
				return len(f.compressed.Asked()) >= 12 || len(f.site.Texts("creator-a")) == 1
			})
			// THEN fan-1 has the creator's message (the one-fan fault did
			// not stop the creator), and the gone fan's message is in the
			// DLQ with its reason
			got := f.site.Texts("creator-a")
			dlq := f.dlq()
			if len(got) != 1 || got[0] != "to a working chat" {
				t.Errorf("fan-1 has %q after %d visibility changes (asked %v): the creator's other message is stuck behind one fan's broken chat", got, len(f.compressed.Asked()), f.compressed.Asked())
			}
			if len(dlq) != 1 || aws.ToString(dlq[0].MessageAttributes[scraper.AttrFailureReason].StringValue) == "" {
				t.Errorf("DLQ holds %d messages; the gone fan's message waits uncounted as if the site were down", len(dlq))
			}
			if t.Failed() {
				lines := strings.Split(f.logs.String(), "\n")
				t.Logf("last log lines:\n%s", strings.Join(lines[max(len(lines)-6, 0):], "\n"))
			}
		})
	}
}

// TestRev22CASiteWideReadOnlyComposerDeadLettersNothing:
//
// Promise: site outages of any kind never dead-letter a message (the
// failure count, and so the DLQ, is only for answers about this message).
//
// Fault: the site in a read-only mode (maintenance, an incident): every
// chat page of every creator loads with its composer and history but the
// send button disabled from the start, before anything is typed.
//
// Observed: the click times out (ErrTimeout), counted as this message's
// failure like a composer that refuses one text (RejectTexts disables the
// button only once that text is typed); after MaxFailures every message of
// every creator is in the DLQ.
//
// A correct system tells a page that cannot send at all (the button
// disabled before typing, on every creator's page) from a refusal of this
// text, and waits it out uncounted like a page without its composer.
func TestRev22CASiteWideReadOnlyComposerDeadLettersNothing(t *testing.T) {
	// GIVEN every chat page's send button disabled from the start, for
	// two creators' messages
	cfg := testConfig()
	f := setup(t, cfg)
	f.behind(cfg, rewriteChatPages(func(html string) string {
		return strings.Replace(html, `<button id="send" type="button">`, `<button id="send" type="button" disabled>`, 1)
	}))
	f.compress()
	f.enqueue(f.newMessage("creator-a", "a0"), f.newMessage("creator-b", "b0"))
	// WHEN the scraper runs for more receives than MaxFailures (3)
	f.runUntil(90*time.Second, func() bool {
		return len(f.compressed.Asked()) >= 8 || f.queueCount(f.queues.Workflows.DLQURL) == 2
	})
	// THEN nothing is dead-lettered: the same page state on every
	// creator's chat is the site's outage
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("%d dead-lettered by a site-wide read-only composer, first: %q", len(d), aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
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

// TestRev22CACreatorPausedLongerThanTheBackstopDeadLettersNothingWithoutAReason:
//
// Promise: nothing reaches a DLQ without a failure_reason; waiting (an
// outage, a rejected session) never dead-letters (maxReceiveCount is a
// backstop that must not be hit).
//
// Fault: a creator whose session the site rejects and nobody renews for
// longer than 1000 receives of the outage delay (15 min capped: about 10
// days; a creator on holiday, an agency that churned). Time scaled: every
// visibility asked for is recorded and applied as 0.
//
// Observed: each receive is a plain release; at the 1001st receive SQS's
// redrive (maxReceiveCount 1000) moves the message to the DLQ with no
// failure_reason, the "must not be hit" backstop hit by design.
//
// A correct system never lets the receive count reach maxReceiveCount: it
// dead-letters the message itself with a reason (waited N days for a
// session) before the backstop, or re-queues it in order with a fresh
// receive count.
func TestRev22CACreatorPausedLongerThanTheBackstopDeadLettersNothingWithoutAReason(t *testing.T) {
	// GIVEN creator-a's stored session is one the site rejects, and one of
	// its messages queued
	f := setup(t, testConfig())
	f.compress()
	f.sessions.set("creator-a", "expired-session")
	f.enqueue(f.newMessage("creator-a", "waits for a new session"))
	// WHEN the scraper runs for more than maxReceiveCount receives
	f.runUntil(5*time.Minute, func() bool {
		return len(f.compressed.Asked()) > 1005 || f.queueCount(f.queues.Workflows.DLQURL) > 0
	})
	// THEN nothing is in the DLQ without its failure_reason
	asked := len(f.compressed.Asked())
	for _, m := range f.dlq() {
		if reason := aws.ToString(m.MessageAttributes[scraper.AttrFailureReason].StringValue); reason == "" {
			t.Fatalf("after %d receives the message is in the DLQ with no failure_reason (moved by maxReceiveCount %d)", asked+1, queues.MaxReceiveCount)
		}
	}
	if asked <= 1000 {
		t.Fatalf("only %d receives ran", asked)
	}
}
