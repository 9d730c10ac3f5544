// Findings of issue 22's second review (of the attempt mark store and the
// anchored read-back), fixed: docs/design.md section 8.

package scraper_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper"
)

// Review 22 (fresh reviewer): attacks on the durable attempt mark and the
// anchored read-back.

// receiveOne receives the next message of the workflows queue with its
// receive count and attributes, as the consumer does.
func (f *fixture) receiveOne() sqstypes.Message {
	f.t.Helper()
	for range 20 {
		r, err := f.aws.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.queues.Workflows.URL), MaxNumberOfMessages: 1,
			WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll}})
		if err != nil {
			f.t.Fatal(err)
		}
		if len(r.Messages) == 1 {
			return r.Messages[0]
		}
	}
	f.t.Fatal("nothing received")
	return sqstypes.Message{}
}

// visibleNow makes a received message visible again at once.
func (f *fixture) visibleNow(m sqstypes.Message) {
	f.t.Helper()
	if _, err := f.aws.SQS.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(f.queues.Workflows.URL),
		ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
		f.t.Fatal(err)
	}
}

func TestRev22ASentMessageWhoseDeleteFailedIsNotSentAgainAfterRedisLosesItsData(t *testing.T) {
	t.Parallel()
	// GIVEN a message the scraper sent (the site answered 200 at once: the
	// hot path, nothing written to the mark store), whose SQS delete then
	// failed (the consumer's own "its delete failed: it is back after the
	// queue's timeout" path, or the task killed between the processing's
	// end and the delete)
	f := setup(t, testConfig())
	m := f.newMessage("creator-a", "sent once, delete lost")
	f.enqueue(m)
	first := f.receiveOne()
	if out := f.proc.Process(context.Background(), first); out.Action() != scraper.Delete || out.Status() != "sent" {
		t.Fatalf("first processing: %+v\n%s", out, f.logs)
	}
	// AND Redis then loses its data (a node replaced empty) before the
	// message comes back
	if err := f.redis.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	f.visibleNow(first)
	// WHEN the redelivered message is processed (past the send gate's
	// fence, which holds every send for one window after the loss)
	var out scraper.Outcome
	for range 10 {
		got := f.receiveOne()
		out = f.proc.Process(context.Background(), got)
		if out.Action() != scraper.Release {
			break
		}
		time.Sleep(out.Delay) // the consumer's visibility delay, applied here
		f.visibleNow(got)
	}
	// THEN the fan still has it once ("no message is sent twice"): the
	// design says only a task that died between a click and its
	// processing's end can leave no mark anywhere; this processing ended
	// cleanly with the message sent
	if got := f.site.Texts("creator-a"); len(got) != 1 {
		t.Fatalf("the fan has %q after %d send requests (second outcome %+v)\n%s", got, f.site.SendRequests(), out, f.logs)
	}
}

// sendAsCreator posts text to fan as the creator does from another device
// (the site's own send endpoint with the creator's session, outside the
// scraper).
func (f *fixture) sendAsCreator(creator, fan, text string) {
	f.t.Helper()
	creds, err := f.sessions.Get(context.Background(), creator)
	if err != nil {
		f.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"text": text})
	req, _ := http.NewRequest(http.MethodPost, f.site.URL+fmt.Sprintf(fakesite.VariantA.SendURL, fan), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: fakesite.VariantA.Cookie, Value: creds.SessionCookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Error(err)
		return
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.t.Errorf("manual send answered %d", resp.StatusCode)
	}
}

func TestRev22AnUnknownSendWhoseAnchorHasItsTextIsNotResentWhenTheCreatorWritesAfterIt(t *testing.T) {
	t.Parallel()
	// GIVEN a chat page that shows the latest 2 messages, without ids (the
	// profile's default), and two "ok" of one creator queued back to back
	// (the first one becomes the anchor of the second's click)
	f := setup(t, testConfig())
	f.site.ShowLatest(2)
	// AND the second "ok" committed and then answered 502 by a gateway,
	// while the creator writes "see you" to the same fan from the phone
	// (after the committed copy, before the read-back)
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{Commit: true, Status: 502}, fakesite.Fault{})
	var once sync.Once
	f.site.OnSent(func(s fakesite.Sent) {
		if s.ID == "m2" {
			once.Do(func() { f.sendAsCreator("creator-a", "fan-1", "see you") })
		}
	})
	f.enqueue(f.newMessage("creator-a", "ok"), f.newMessage("creator-a", "ok"))
	// WHEN the scraper runs
	ok := f.runUntil(40*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has each "ok" once: the committed copy is on the page
	// (second to last), so the read-back must say sent or unknown, never
	// "not sent"
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "ok,ok,see you" {
		t.Fatalf("ok %t, the site has %q after %d send requests\n%s", ok, got, f.site.SendRequests(), f.logs)
	}
}

func TestRev22AGateway502OnARepeatedTextInAChatShowingEverythingIsDeliveredNotDeadLettered(t *testing.T) {
	t.Parallel()
	// GIVEN the site's default chat page, which shows the whole
	// conversation (no paging: the count alone could tell), three "ok" of
	// one creator, and a gateway answering 502 to the third send without
	// its origin committing it (a 5xx storm starting at that click)
	f := setup(t, shortHorizon())
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{}, fakesite.Fault{Status: 502}, fakesite.Fault{Status: 502}, fakesite.Fault{Status: 502})
	for range 3 {
		f.enqueue(f.newMessage("creator-a", "ok"))
	}
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the third "ok" was delivered once after the outage and nothing
	// is in the DLQ ("outages never dead-letter"; design.md only concedes
	// runs of identical texts on a page showing its latest messages)
	dlq := f.dlq()
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "ok,ok,ok" || len(dlq) != 0 {
		reason := ""
		if len(dlq) > 0 {
			reason = aws.ToString(dlq[0].MessageAttributes[scraper.AttrFailureReason].StringValue)
		}
		t.Fatalf("ok %t, the site has %q, %d in the DLQ (%q)\n%s", ok, got, len(dlq), reason, f.logs)
	}
}

func TestRev22AnUnknownSendWhileTheChatsHistoryDoesNotRenderIsNotDeadLettered(t *testing.T) {
	t.Parallel()
	// GIVEN a send committed and answered 502 by a gateway, and from that
	// moment every chat page loading its shell and composer but never its
	// history (the site's history service down: the history's end marker,
	// the profile's historyReady, never appears), for every creator
	f := setup(t, testConfig())
	var broken atomic.Bool
	f.behind(testConfig(), rewriteChatPages(func(html string) string {
		if broken.Load() {
			return strings.Replace(html, `<li class="history-end" hidden></li>`, "", 1)
		}
		return html
	}))
	f.compress()
	f.site.InjectFaults(fakesite.Fault{Commit: true, Status: 502})
	f.site.OnSent(func(fakesite.Sent) { broken.Store(true) })
	f.enqueue(f.newMessage("creator-a", "hello"))
	// WHEN the scraper runs for more receives than MaxFailures
	f.runUntil(90*time.Second, func() bool {
		return len(f.compressed.Asked()) >= 5 || f.queueCount(f.queues.Workflows.DLQURL) == 1
	})
	// THEN nothing is dead-lettered: a site whose chats render no history
	// is the site's outage (like a chat page without its composer), not
	// this message's failure
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("dead-lettered by a site-wide history outage: %q\n%s", aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue), f.logs)
	}
	// AND once the history renders again the fan has it once
	broken.Store(false)
	ok := f.runUntil(40*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t, the site has %q\n%s", ok, got, f.logs)
	}
}

func TestRev22ChatsWhoseHistoryNeverRendersForEveryCreatorDeadLetterNothing(t *testing.T) {
	t.Parallel()
	// GIVEN every chat page loading its shell and composer but never its
	// history (the site's history service down), for two creators' messages
	// (nothing clicked yet: the mark is read before the click)
	f := setup(t, testConfig())
	f.behind(testConfig(), rewriteChatPages(func(html string) string {
		return strings.Replace(html, `<li class="history-end" hidden></li>`, "", 1)
	}))
	f.compress()
	f.enqueue(f.newMessage("creator-a", "a0"), f.newMessage("creator-b", "b0"))
	// WHEN the scraper runs for more receives than MaxFailures
	f.runUntil(90*time.Second, func() bool {
		return len(f.compressed.Asked()) >= 8 || f.queueCount(f.queues.Workflows.DLQURL) == 2
	})
	// THEN nothing is dead-lettered: the same failure on every creator's
	// page is the site's outage, not one message's
	if d := f.dlq(); len(d) != 0 {
		t.Fatalf("%d dead-lettered by a site-wide history outage, first: %q", len(d), aws.ToString(d[0].MessageAttributes[scraper.AttrFailureReason].StringValue))
	}
}

func TestRev22AnUnknownSendIsSettledWhenTheCreatorDeletesAnOlderMessageThanTheAnchor(t *testing.T) {
	t.Parallel()
	// GIVEN the site's default chat page (the whole conversation, no ids),
	// a fan who got "a", "b", "c" from this creator, and "d" answered 502
	// by a gateway without its origin committing it (a 5xx storm starting
	// at that click), while the creator deletes "b" from the chat (not the
	// anchor: "c", the message shown last at the click, stays)
	f := setup(t, shortHorizon())
	f.behind(shortHorizon(), func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/messages") {
				body, _ := io.ReadAll(r.Body)
				if strings.Contains(string(body), `"d"`) {
					f.site.DeleteSent("m2")
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			origin.ServeHTTP(w, r)
		})
	})
	f.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{}, fakesite.Fault{}, fakesite.Fault{Status: 502}, fakesite.Fault{Status: 502}, fakesite.Fault{Status: 502})
	for _, text := range []string{"a", "b", "c", "d"} {
		f.enqueue(f.newMessage("creator-a", text))
	}
	// WHEN the scraper runs until the queue is empty
	ok := f.runUntil(60*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN "d" is delivered once and nothing is in the DLQ: the anchor "c"
	// is still shown with no "d" after it (only an older message went), so
	// the read-back can say "not sent"; design.md only concedes Unknown for
	// the anchor gone
	dlq := f.dlq()
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "a,b,c,d" || len(dlq) != 0 {
		reason := ""
		if len(dlq) > 0 {
			reason = aws.ToString(dlq[0].MessageAttributes[scraper.AttrFailureReason].StringValue)
		}
		t.Fatalf("ok %t, the site has %q, %d in the DLQ (%q)\n%s", ok, got, len(dlq), reason, f.logs)
	}
}
