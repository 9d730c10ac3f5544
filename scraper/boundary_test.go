package scraper_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
	scrapersetup "github.com/huntaze/message-pipeline/scraper/setup"
)

// Tests of the browser boundary: a site that commits and then fails to
// answer, gateways that answer 5xx after their origin committed, texts the
// composer rewrites, outages of every kind, refusals about one fan, and
// captures that must hold no credential.

func (f *fixture) messageTo(creator, fan, text string) message.Message {
	m, err := message.New("user-"+creator, fan, text, time.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	m.CreatorID = creator
	return m
}

func TestACommitThenDroppedConnectionIsOneSendOneRequestAndOneGateToken(t *testing.T) {
	t.Parallel()
	// GIVEN a gate of 3 sends per 3 s, 4 messages of one creator, a page
	// whose script sends again when its request fails, and a site that
	// records the first send and then drops the connection before any
	// answer (where Chromium would re-send the POST on its own)
	f := setupWithGate(t, testConfig(), ratelimit.Config{Limit: 3, Window: 3 * time.Second, Margin: 200 * time.Millisecond, KeyPrefix: "gate"})
	f.site.PageRetriesSends(true)
	f.site.InjectFaults(fakesite.Fault{Commit: true, Drop: true})
	for i := range 4 {
		f.enqueue(f.newMessage("creator-a", fmt.Sprint("d", i)))
	}
	// WHEN the scraper drains them
	ok := f.runUntil(40*time.Second, func() bool { return len(f.site.Sent()) >= 4 && f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN each was accepted once, from one request each: neither the
	// browser nor the page's own retry reached the site a second time
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "d0,d1,d2,d3" || f.site.SendRequests() != 4 {
		t.Fatalf("ok %t, site has %q from %d requests\n%s", ok, got, f.site.SendRequests(), f.logs)
	}
	// AND no 3 s window at the site held more than the gate's 3
	if got := f.site.MaxInWindow(3 * time.Second)["creator-a"]; got > 3 {
		t.Fatalf("%d sends in one 3 s window", got)
	}
	// AND the read-back settled the dropped one, and the page's second
	// request was counted and reported
	logs := f.logs.String()
	if !strings.Contains(logs, "sent: the chat shows it after") || !strings.Contains(logs, `"send_requests":2`) {
		t.Fatalf("no read-back or request count:\n%s", logs)
	}
}

func TestAGatewayErrorAfterTheOriginCommittedIsReadBackNotResent(t *testing.T) {
	t.Parallel()
	for _, status := range []int{502, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			// GIVEN a gateway that answers status after its origin recorded
			// the send, for an identical text the fan already has
			f := setup(t, testConfig())
			f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{Commit: true, Status: status})
			f.enqueue(f.newMessage("creator-a", "Thank you babe"), f.newMessage("creator-a", "Thank you babe"))
			// WHEN the scraper runs
			ok := f.runUntil(20*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN the fan has it twice (two messages), not three times
			if got := f.site.Texts("creator-a"); !ok || len(got) != 2 || f.site.SendRequests() != 2 {
				t.Fatalf("ok %t, site has %q from %d requests\n%s", ok, got, f.site.SendRequests(), f.logs)
			}
			if !strings.Contains(f.logs.String(), fmt.Sprintf("sent: the chat shows it after site answered %d (2 identical texts, 1 before the click)", status)) {
				t.Fatalf("not settled by a read-back:\n%s", f.logs)
			}
		})
	}
}

func TestACRLFTextWhoseClickTimedOutIsFoundAsTheSiteStoresIt(t *testing.T) {
	t.Parallel()
	// GIVEN a text with CRLF, a lone CR, a tab and trailing spaces, which
	// the site records and then answers too late, and a site that stores
	// texts trimmed
	f := setup(t, testConfig())
	f.site.StoreAs(strings.TrimSpace)
	f.site.InjectFaults(fakesite.Fault{Commit: true, Delay: 4 * time.Second})
	text := "line one\r\nline two\rthree\tfour  "
	f.enqueue(f.newMessage("creator-a", text))
	// WHEN the scraper runs
	ok := f.runUntil(30*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN it was sent once: the read-back counted the stored form
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 || got[0] != "line one\nline two\nthree\tfour" {
		t.Fatalf("ok %t, site has %q\n%s", ok, got, f.logs)
	}
}

func TestARefusalForOneFanDeadLettersThatMessageAndTheCreatorKeepsSending(t *testing.T) {
	t.Parallel()
	// GIVEN a fan who blocked creator-a (the site answers 403 to sends to
	// them, the session is good), and creator-a's messages to another fan
	// before and after
	f := setup(t, testConfig())
	f.site.RefuseFan("fan-blocked", 403)
	f.enqueue(f.messageTo("creator-a", "fan-1", "r0"), f.messageTo("creator-a", "fan-blocked", "to the blocked fan"),
		f.messageTo("creator-a", "fan-1", "r1"), f.messageTo("creator-a", "fan-1", "r2"))
	// WHEN the scraper runs
	ok := f.runUntil(30*time.Second, func() bool {
		return len(f.site.Texts("creator-a")) == 3 && f.queueCount(f.queues.Workflows.URL) == 0
	})
	// THEN the other messages were delivered in order, the creator was
	// never paused, and the refused message is in the DLQ with its reason
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "r0,r1,r2" {
		t.Fatalf("ok %t, site has %q\n%s", ok, got, f.logs)
	}
	dlq := f.dlq()
	if len(dlq) != 1 {
		t.Fatalf("DLQ %d", len(dlq))
	}
	if reason := aws.ToString(dlq[0].MessageAttributes[scraper.AttrFailureReason].StringValue); !strings.HasPrefix(reason, "scraper: recipient_refused: site answered 403") || !strings.Contains(reason, "session is good") {
		t.Fatalf("reason %q", reason)
	}
	if strings.Contains(f.logs.String(), "creator paused") || strings.Contains(f.emf.String(), `"session_invalid"`) {
		t.Fatalf("the creator was paused for one fan's refusal:\n%s", f.logs)
	}
}

func TestTheCapturesOfAFailedSendHoldNoCredential(t *testing.T) {
	t.Parallel()
	// GIVEN a send the site refuses (captures: screenshot, page, trace),
	// after a successful one in the same context (the trace's network log
	// then holds the session cookie of several requests)
	f := setup(t, testConfig())
	secret := f.site.AddCreator("creator-a") // the session value
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{Status: 400})
	m := f.newMessage("creator-a", "refused with captures")
	f.enqueue(f.newMessage("creator-a", "fine"), m)
	ok := f.runUntil(20*time.Second, func() bool { return f.queueCount(f.queues.Workflows.DLQURL) == 1 })
	if !ok {
		t.Fatalf("not dead-lettered\n%s", f.logs)
	}
	if err := f.results.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// WHEN every byte of every object in the bucket is searched (each
	// file of a zip decompressed)
	keys := append(f.objects("artifacts/"), f.objects("results/")...)
	kinds := map[string]bool{}
	traceText := false
	for _, k := range keys {
		out, err := f.aws.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("results"), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(out.Body)
		out.Body.Close()
		kinds[k[strings.LastIndexByte(k, '.')+1:]] = true
		// THEN the session value is nowhere
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("%s holds the session value", k)
		}
		if !strings.HasSuffix(k, ".zip") {
			continue
		}
		zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		for _, zf := range zr.File {
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if bytes.Contains(b, []byte(secret)) || bytes.Contains(bytes.ToLower(b), []byte("cookie: sess")) {
				t.Errorf("%s: %s holds the session", k, zf.Name)
			}
			if bytes.Contains(b, []byte(m.Content)) {
				traceText = true
			}
		}
	}
	// AND the captures are still there and useful (the trace shows the
	// typed text)
	if !kinds["png"] || !kinds["html"] || !kinds["zip"] || !traceText {
		t.Fatalf("captures %v, trace shows the text: %t", kinds, traceText)
	}
}

// outageConfig is the production configuration with time scaled: the
// outage's delays are asked for in full (and recorded) but applied as 0.
func outageConfig() scraper.Config {
	c := scrapersetup.Processor(scrapersettings.Defaults())
	c.MaxFailures, c.BackoffBase, c.BackoffFactor, c.ServerAttempts, c.ServerBackoff = 5, 30*time.Second, 2, 3, 10*time.Millisecond
	c.RateLimitDefault, c.BreakerFailures, c.BreakerOpenFor, c.OutageBackoff, c.OutageBackoffMax = time.Minute, 5, time.Second, 5*time.Second, 15*time.Minute
	// Scaled: after the outage a first message whose click got no answer
	// finds its fan's chat empty and waits EMPTY_CHAT_PATIENCE of the
	// clock (compress shortens delays, not the clock): 5 min by default,
	// past the test's 2 min for delivery.
	c.EmptyChatPatience = 10 * time.Second
	return c
}

func TestAThreeHourOutageOfEachKindDeadLettersNothingAndDeliversEverythingOnceInOrder(t *testing.T) {
	t.Parallel()
	for _, kind := range []fakesite.Outage{fakesite.Refused, fakesite.Hanging, fakesite.Storm, fakesite.Reset} {
		t.Run(kind.String(), func(t *testing.T) {
			// Mostly waiting (timeouts, the breaker's open time): the kinds
			// run side by side, each with its own site, browser and queues.
			t.Parallel()
			// GIVEN three creators with two messages each, and the site
			// going down the moment it records the first send (its answer
			// is lost: an unknown outcome in the middle of the outage)
			f := setupWith(t, outageConfig(), openGate, onlyfans.Timeouts{Navigation: 1500 * time.Millisecond, Action: 3 * time.Second, Response: 1500 * time.Millisecond})
			f.compress()
			creators := []string{"creator-a", "creator-b", "creator-c"}
			f.sessions.set("creator-c", f.site.AddCreator("creator-c"))
			var all []message.Message
			for i := range 2 {
				for _, c := range creators {
					all = append(all, f.newMessage(c, fmt.Sprintf("%s-%d", c, i)))
				}
			}
			f.enqueue(all...)
			f.site.OnSent(func(fakesite.Sent) {
				if len(f.site.Sent()) == 1 {
					f.site.SetOutage(kind)
				}
			})
			// WHEN the outage lasts 3 hours of the delays the scraper asks
			// for (each message's waits add up to 3 h on average)
			waited := func() time.Duration {
				var s time.Duration
				for _, a := range f.compressed.Asked() {
					s += time.Duration(a) * time.Second
				}
				return s
			}
			f.runUntil(4*time.Minute, func() bool { return waited() >= time.Duration(len(all))*3*time.Hour })
			if waited() < time.Duration(len(all))*3*time.Hour {
				t.Fatalf("the outage lasted only %s of waits\n%s", waited(), f.logs)
			}
			// THEN nothing was dead-lettered, no failure was counted, and the
			// waits grew to the 15-minute cap
			if d := f.dlq(); len(d) != 0 {
				t.Fatalf("%d dead-lettered during the outage", len(d))
			}
			for _, m := range all {
				if st, _ := f.ledger.State(context.Background(), m.MessageID, m.CreatorKey()); st.Failures != 0 {
					t.Fatalf("%s: %d failures counted for an outage", m.Content, st.Failures)
				}
			}
			maxAsked := int32(0)
			for _, a := range f.compressed.Asked() {
				maxAsked = max(maxAsked, a)
			}
			if maxAsked != 900 {
				t.Fatalf("longest wait %d s, want the 900 s cap", maxAsked)
			}
			if !strings.Contains(f.logs.String(), `"to":"open"`) {
				t.Fatalf("the breaker never opened:\n%s", f.logs)
			}
			// WHEN the site comes back
			f.site.OnSent(nil)
			f.site.SetOutage(fakesite.Up)
			ok := f.runUntil(2*time.Minute, func() bool { return len(f.site.Sent()) == len(all) && f.queueCount(f.queues.Workflows.URL) == 0 })
			// THEN everything was delivered once, in order per creator, and
			// nothing reached a DLQ
			if !ok || len(f.dlq()) != 0 {
				t.Fatalf("after the outage: ok %t, sent %d\n%s", ok, len(f.site.Sent()), f.logs)
			}
			for _, c := range creators {
				if got := strings.Join(f.site.Texts(c), ","); got != c+"-0,"+c+"-1" {
					t.Errorf("%s: %s", c, got)
				}
			}
			// AND the send whose answer the outage swallowed was settled by a
			// read-back once the site was back, not sent again
			if !strings.Contains(f.logs.String(), "found in the chat after an interrupted attempt") {
				t.Errorf("the first send's unknown outcome was not read back:\n%s", f.logs)
			}
		})
	}
}
