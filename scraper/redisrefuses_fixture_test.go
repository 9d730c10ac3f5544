package scraper_test

import (
	"context"
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
