package onlyfans_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/browserharness"
)

// inAppOnly skips a test of the switch inside a single-page app when the
// tests run against the document per chat (SCRAPER_TEST_PROFILE).
func inAppOnly(t *testing.T) {
	t.Helper()
	if browserharness.SiteProfile().InApp == nil {
		t.Skip("the tests' profile opens a document per chat (SCRAPER_TEST_PROFILE=spa switches chats in the app)")
	}
}

// sameDocument marks the creator's kept page's document and reports
// whether a later call finds the mark (no document load in between).
func sameDocument(t *testing.T, s *onlyfans.Sender, creator string) func() bool {
	t.Helper()
	page := s.KeptPageForTest(creator)
	if page == nil {
		t.Fatal("no kept page")
	}
	if _, err := page.Evaluate(`() => { window.__sameDocument = true }`); err != nil {
		t.Fatal(err)
	}
	return func() bool {
		v, err := page.Evaluate(`() => window.__sameDocument === true`)
		return err == nil && v == true
	}
}

func TestTheKeptPageSwitchesChatsInsideTheAppWithoutADocumentLoad(t *testing.T) {
	t.Parallel()
	inAppOnly(t)
	// GIVEN a creator whose kept page holds the app after one send
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSenderWith(t, site, onlyfans.Config{RecycleAfter: 100})
	ctx := context.Background()
	if res, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "one"), nil); err != nil || res.Status != 200 {
		t.Fatalf("%+v %v", res, err)
	}
	same := sameDocument(t, s, "creator-1")
	// WHEN it sends to other fans, one of them twice, and counts a chat
	// (the chat read before each click shows the fan's own messages only)
	for i, fan := range []string{"fan-2", "fan-3", "fan-3", "fan-1"} {
		seen := -1
		if res, _, err := s.Send(ctx, "creator-1", creds, msg(t, fan, "to "+fan), func(m onlyfans.Mark) error { seen = m.Identical; return nil }); err != nil || res.Status != 200 {
			t.Fatalf("%s: %+v %v", fan, res, err)
		}
		if want := []int{0, 0, 1, 0}[i]; seen != want {
			t.Fatalf("send %d to %s: the chat showed %d copies of its text before the click, want %d", i, fan, seen, want)
		}
	}
	if n, err := s.CountIdentical(ctx, "creator-1", creds, msg(t, "fan-3", "to fan-3")); err != nil || n != 2 {
		t.Fatalf("count: %d %v", n, err)
	}
	// THEN every message reached its own fan, and the page never loaded a
	// document again
	want := []string{"fan-1", "fan-2", "fan-3", "fan-3", "fan-1"}
	for i, m := range site.Sent() {
		if m.Fan != want[i] {
			t.Fatalf("message %d went to %s, want %s", i, m.Fan, want[i])
		}
	}
	if !same() {
		t.Fatal("the kept page loaded a document: the chats were not switched inside the app")
	}
}

func TestASlowChatSwitchNeverTypesIntoThePreviousFansChat(t *testing.T) {
	t.Parallel()
	inAppOnly(t)
	for _, tc := range []struct {
		name string
		slow func(site *fakesite.Site)
	}{
		// the switch confirms late, within the timeout: in the app
		{"slow within the timeout", func(site *fakesite.Site) { site.SlowChat("fan-2", 1200*time.Millisecond) }},
		// the switch never confirms in time: a document load instead
		{"slower than the timeout, once", func(site *fakesite.Site) { site.SlowChatPages(1, 9*time.Second) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN the kept page shows fan-1's chat, and fan-2's history
			// is slow to come (the app shows fan-1's chat meanwhile)
			site := fakesite.Start(t)
			creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
			s := newSenderWith(t, site, onlyfans.Config{RecycleAfter: 100})
			ctx := context.Background()
			if _, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "one"), nil); err != nil {
				t.Fatal(err)
			}
			tc.slow(site)
			// WHEN a message to fan-2 is sent
			res, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-2", "for fan-2 only"), nil)
			// THEN fan-2 got it, and fan-1 nothing more
			sent := site.Sent()
			if err != nil || res.Status != 200 || len(sent) != 2 || sent[1].Fan != "fan-2" || site.SendRequests() != 2 {
				t.Fatalf("%+v %v; the site has %+v", res, err, sent)
			}
		})
	}
}

func TestASwitchThatLandsOnAnotherFansChatNeverTypesThere(t *testing.T) {
	t.Parallel()
	inAppOnly(t)
	// GIVEN the kept page holds the app
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSenderWith(t, site, onlyfans.Config{RecycleAfter: 100})
	ctx := context.Background()
	if _, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "one"), nil); err != nil {
		t.Fatal(err)
	}
	// WHEN the next chat opening shows fan-9's chat instead of fan-2's
	site.MisrouteChats(1, "fan-9")
	res, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-2", "for fan-2"), nil)
	// THEN the sender loaded fan-2's chat instead and sent there
	if sent := site.Sent(); err != nil || res.Status != 200 || len(sent) != 2 || sent[1].Fan != "fan-2" {
		t.Fatalf("%+v %v; the site has %+v", res, err, sent)
	}
	// WHEN every opening shows fan-9's chat (the document too)
	site.MisrouteChats(2, "fan-9")
	_, _, err = s.Send(ctx, "creator-1", creds, msg(t, "fan-3", "for fan-3"), nil)
	// THEN nothing is typed or sent: another fan's chat is the site's
	// outage, never this fan's unusable chat (review 22 Y A)
	if !errors.Is(err, onlyfans.ErrOtherFansChat) || !errors.Is(err, onlyfans.ErrSiteDown) || errors.Is(err, onlyfans.ErrChatUnusable) || site.SendRequests() != 2 {
		t.Fatalf("err %v, %d send requests", err, site.SendRequests())
	}
}

func TestAChatPageNamingAnotherFanIsNeitherTypedIntoNorReadBack(t *testing.T) {
	t.Parallel()
	// GIVEN the tests' profile (a document per chat, or the app: both name
	// the open chat's fan, chatIdentity or inApp.identity) and a chat of
	// fan-1 holding one message
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSender(t, site)
	ctx := context.Background()
	first := msg(t, "fan-1", "hello one")
	if res, _, err := s.Send(ctx, "creator-1", creds, first, nil); err != nil || res.Status != 200 {
		t.Fatalf("harness: %+v %v", res, err)
	}
	// WHEN every chat opening shows fan-9's chat at the asked fan's address
	// (a router or cache serving the wrong chat)
	site.MisrouteChats(1_000, "fan-9")
	typed := false
	_, _, sendErr := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "for fan-1"), func(onlyfans.Mark) error { typed = true; return nil })
	_, readErr := s.ReadBack(ctx, "creator-1", creds, first, onlyfans.NewMark(nil, "x"))
	// THEN the send stops before its mark (nothing typed, nothing sent)
	// and the read-back judges nothing: both are the site's outage
	// (ErrOtherFansChat, never ErrChatUnusable: no fault of this fan's own
	// chat shows another fan's, review 22 Y A)
	for what, err := range map[string]error{"send": sendErr, "read-back": readErr} {
		if !errors.Is(err, onlyfans.ErrSiteDown) || !errors.Is(err, onlyfans.ErrOtherFansChat) || errors.Is(err, onlyfans.ErrChatUnusable) {
			t.Errorf("%s of a misrouted chat: %v, want the site's outage", what, err)
		}
	}
	if typed || site.SendRequests() != 1 {
		t.Errorf("send: reached beforeClick %t, %d send requests", typed, site.SendRequests())
	}
}

func TestChatIdentityIsValidatedAndNotSetBesideInAppIdentity(t *testing.T) {
	t.Parallel()
	// GIVEN the document profile with a malformed chatIdentity
	p := onlyfans.DefaultProfile()
	if p.ChatIdentity == nil {
		t.Fatal("the built-in document profile names no chat identity (review 22 X)")
	}
	p.ChatIdentity = &onlyfans.ChatIdentity{Selector: " ", Attribute: "data fan"}
	// THEN both fields are named
	err := p.Validate()
	for _, want := range []string{"chatIdentity.selector", "chatIdentity.attribute"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	// GIVEN the in-app profile with chatIdentity too THEN an error: one
	// element names the fan
	q := onlyfans.SPAProfile()
	q.ChatIdentity = &onlyfans.ChatIdentity{Selector: "#chat-pane", Attribute: "data-fan"}
	if err := q.Validate(); err == nil || !strings.Contains(err.Error(), "chatIdentity and inApp.identity") {
		t.Errorf("both set: %v", err)
	}
}
