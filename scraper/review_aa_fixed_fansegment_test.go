package scraper_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/message"
)

// TestRev22AAAMisroutedSendPassesForAFanNamedLikeAPathSegment (review 22
// AA, finding A):
//
// Promise (a): a message never reaches another fan.
//
// Fault (steps): the default (document) profile. The fan's id is
// "messages" (a username equal to a segment of the send API's path).
//  1. A front serves the chat page of fan "messages" correctly (it names
//     that fan), but its send button's request goes to fan-9's send URL
//     (/api2/v2/chats/fan-9/messages): a misrouted app, the fault the
//     FanInPath check exists for (review 22 W).
//
// Why: routeSend (scraper/onlyfans/sender_click.go, the NamesFan check)
// asks SendRequest.NamesFan (scraper/onlyfans/profile.go:229), which
// accepts a URL when ANY path segment equals the fan id, not the segment
// the profile's URL pattern puts the fan in. "/api2/v2/chats/fan-9/messages"
// has the segment "messages", so the request for fan-9 is let through as
// fan "messages"'s, and the text reaches fan-9 (reported sent).
//
// A correct system matches the fan at its own position of the send URL
// (the pattern's wildcard segment): the request is refused before it
// leaves (ErrMisrouted), fan-9 gets nothing.
//
// Fixed: NamesFan (scraper/onlyfans/profile.go) looks for the fan only in
// the segment where the profile's sendRequest.url glob has its lone "*"
// (the glob's segments aligned from the end of the request's path).
func TestRev22AAAMisroutedSendPassesForAFanNamedLikeAPathSegment(t *testing.T) {
	cfg := testConfig()
	f := setup(t, cfg)
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && r.URL.Path == "/my/chats/chat/messages" {
				serveRewritten(w, r, origin, func(page string) string {
					page = strings.ReplaceAll(page, `chats\/messages\/messages`, `chats\/fan-9\/messages`)
					return strings.ReplaceAll(page, `chats/messages/messages`, `chats/fan-9/messages`)
				})
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	m, err := message.New("user-creator-a", "messages", "only for the fan named messages", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m.CreatorID = "creator-a"
	f.enqueue(m)
	f.runUntil(60*time.Second, func() bool { return len(f.sentTo("fan-9")) > 0 || f.queueCount(f.queues.Workflows.URL) == 0 })
	if got := f.sentTo("fan-9"); len(got) != 0 {
		t.Fatalf("fan-9 received another fan's message: %q; the scraper's word:\n%s", got, linesWith(f.logs.String(), "another fan", "message processed"))
	}
}
