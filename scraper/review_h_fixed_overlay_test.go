// Issue 22, eighth review (fresh reviewer H): one fan's chat whose send
// button something covers, and the patience of chatFault.

package scraper_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/scraper"
)

// seenFor is how long a wait says the fan's chat was seen broken.
var seenFor = regexp.MustCompile(`seen so for [0-9.a-zµ]+`)

// TestRev22HCOneFansCoveredSendButtonReachesTheDLQWithItsReason:
//
// Promise (c) (and issue 22 deliver 4): a fault about one fan stays with
// that fan; nothing reaches a DLQ without its failure_reason, and
// maxReceiveCount must not be hit.
//
// Only fan-gone's chat shows an overlay over its send button ("renew the
// subscription to message"); the probe chat and every other chat work.
// Typing works, so every send reaches beforeClick, which forgets the
// first sighting of the fan's broken chat (processor_send.go beforeClick
// -> forgetBrokenChat: "the fan's chat works") right before the click
// that times out with nothing issued (ErrChatUnusable). chatFault then
// probes (good), rechecks the fan's chat (the trial hover fails: still
// broken) and brokenFanChat finds a first sighting of "now": seen 0 s <
// ChatFaultPatience, an uncounted wait. Every re-click does the same, so
// the patience never ripens: the message never counts, the creator's
// later message to a working chat waits behind it (one FIFO group) until
// the backstop (990 receives). The control (the same fan's composer
// disabled: typing fails before beforeClick) ripens and is dead-lettered
// with chat_unusable.
func TestRev22HCOneFansCoveredSendButtonReachesTheDLQWithItsReason(t *testing.T) {
	t.Parallel()
	for name, rewrite := range map[string]func(string) string{
		"an overlay over this fan's send button": func(html string) string {
			return strings.Replace(html, `</body>`, `<div id="renew" style="position:fixed;inset:0;z-index:9;background:rgba(0,0,0,.1)">Renew the subscription to message</div></body>`, 1)
		},
		"control (this fan's composer disabled)": func(html string) string {
			return strings.Replace(html, `<textarea id="message-input"`, `<textarea id="message-input" disabled`, 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// GIVEN creator-a's message to fan-gone, whose chat alone is
			// broken, then one to fan-1, whose chat works
			cfg := shortHorizon()
			f := setup(t, cfg)
			f.behind(cfg, brokenChatFor("fan-gone", func(w http.ResponseWriter, html string) {
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, rewrite(html))
			}))
			f.compress()
			f.enqueue(f.messageTo("creator-a", "fan-gone", "to the gone fan"), f.messageTo("creator-a", "fan-1", "to a working chat"))
			// WHEN the scraper runs well past the patience (3 s) and
			// MaxFailures (3)
			f.runUntil(60*time.Second, func() bool {
				return len(f.site.Texts("creator-a")) == 1 && f.queueCount(f.queues.Workflows.URL) == 0
			})
			// THEN fan-1 has its message and the gone fan's is in the DLQ
			// with chat_unusable
			got := f.site.Texts("creator-a")
			dlq := f.dlq()
			if len(got) != 1 || len(dlq) != 1 || !strings.Contains(aws.ToString(dlq[0].MessageAttributes[scraper.AttrFailureReason].StringValue), scraper.ClassChatUnusable) {
				t.Fatalf("fan-1 has %q, the DLQ holds %d after %d receives (%d chat_unusable failures counted; the fan's chat seen broken for %q)", got, len(dlq), len(f.compressed.Asked()),
					strings.Count(f.logs.String(), `"error_class":"chat_unusable"`), seenFor.FindAllString(f.logs.String(), -1))
			}
		})
	}
}
