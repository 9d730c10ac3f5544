// Fixtures of issue 22's eighth review (fresh reviewer H), shared by its
// tests behind the reviewfindings tag and those that held.

package scraper_test

import (
	"regexp"
	"strings"
)

// messageItem is one of the creator's messages on a chat page.
var messageItem = regexp.MustCompile(`<li class="message"[^>]*>[^<]*</li>`)

// historyStartItem is the marker of a chat page showing its first message.
const historyStartItem = `<li class="history-start" hidden></li>`

// latestOf is the chat page body as a page that shows only its latest n
// messages (0: all) renders it; behind: from a read replica one commit
// behind its primary (the last committed message not there yet, so the
// window of n ends one message earlier).
func latestOf(body string, n int, behind bool) string {
	locs := messageItem.FindAllStringIndex(body, -1)
	if len(locs) == 0 {
		return body
	}
	keep := locs
	if behind {
		keep = keep[:len(keep)-1]
	}
	if n > 0 && len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	var b strings.Builder
	b.WriteString(body[:locs[0][0]])
	for _, l := range keep {
		b.WriteString(body[l[0]:l[1]])
	}
	b.WriteString(body[locs[len(locs)-1][1]:])
	out := b.String()
	if n > 0 {
		// A page that pages never says it starts at the first message.
		out = strings.Replace(out, historyStartItem, "", 1)
	}
	return out
}
