package scraper_test

import (
	"testing"
	"time"
)

// TestRev22WBMisroutedChatDocumentSendsTheMessageToAnotherFan (review 22
// W, finding B):
//
// Promise (a): every accepted message reaches its fan exactly once (never
// lost; a fan's message reaches that fan, no other).
//
// Fault: the fake site's MisrouteChats ("a router or a cache serving the
// wrong chat"): the one chat page the message's send opens, the document
// per chat of the default profile (profiles/onlyfans.json, no inApp),
// answers fan-9's chat at fan-1's URL. Nothing else goes wrong.
//
// Why: onlyfans.Sender.openChat confirms the fan the page shows only for
// an in-app profile (confirmChat under "if s.cfg.Profile.InApp != nil");
// the document path takes any chat page at the fan's URL for that fan's
// (docs/scraper.md describes the misroute as the switch's own fault, yet
// the site's fault applies to documents too, as a CDN keying chat pages on
// the cookie alone would). The mark, the typing and the click are made on
// fan-9's chat, the page's script posts to /api2/v2/chats/fan-9/messages
// (the send request's URL is not checked against the message's fan
// either), the site answers 200 and the processor settles fan-1's message
// sent: fan-1 never gets it, and fan-9, a stranger, gets a message meant
// for someone else.
//
// A correct system never clicks on a chat it has not confirmed is the
// message's fan's (a document that names its fan, or the send request's
// URL checked against the recipient before it is let through): the
// misrouted page is an outage (ErrChatUnusable + ErrSiteDown, as the
// in-app path makes it), and the message reaches fan-1 once, fan-9
// nothing. (Runs against the document profile, the default
// SCRAPER_TEST_PROFILE; the in-app profile confirms the fan and holds.)
//
// Fixed: the built-in profiles set sendRequest.fanInPath: the sender
// refuses, before it leaves, a send request whose URL path does not name
// the message's fan (routeSend, SendRequest.NamesFan); not sent, the
// click's mark (read on fan-9's chat) is cleared and the message waits as
// the site's outage, then reaches fan-1 once.
func TestRev22WBMisroutedChatDocumentSendsTheMessageToAnotherFan(t *testing.T) {
	cfg := testConfig()
	f := setup(t, cfg)
	f.site.MisrouteChats(1, "fan-9")
	m := f.newMessage("creator-a", "just for you, fan one")
	f.enqueue(m)
	ok := f.runUntil(60*time.Second, func() bool {
		return f.queueCount(f.queues.Workflows.URL) == 0
	})
	toFan1, toFan9 := f.sentTo("fan-1"), f.sentTo("fan-9")
	if !ok || len(toFan1) != 1 || len(toFan9) != 0 {
		t.Fatalf("ok %t: fan-1 has %q, fan-9 has %q (%d send requests); the scraper's word:\n%s",
			ok, toFan1, toFan9, f.site.SendRequests(), linesWith(f.logs.String(), "message processed", "unusable", "chat"))
	}
}
