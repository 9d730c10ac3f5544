package onlyfans_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/browserharness"
	"github.com/huntaze/message-pipeline/test/harness"
)

func newSenderWith(t *testing.T, site *fakesite.Site, cfg onlyfans.Config) *onlyfans.Sender {
	t.Helper()
	cfg.BaseURL, cfg.Browser = site.URL, browser.Options{DriverDir: harness.DriverDir(t)}
	// Navigation 6 s: a cold browser's first load on a loaded machine took over 2 s.
	cfg.Timeouts = onlyfans.Timeouts{Navigation: 6 * time.Second, Action: 3 * time.Second, Response: 2 * time.Second}
	s := completeSender(t, cfg)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestAKeptPageServesTheCreatorsNextSendsAndAFailedOneIsReplaced(t *testing.T) {
	t.Parallel()
	// GIVEN a creator who sent once
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSenderWith(t, site, onlyfans.Config{})
	ctx := context.Background()
	if _, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "one"), nil); err != nil {
		t.Fatal(err)
	}
	kept := s.KeptPageForTest("creator-1")
	// WHEN they send to other fans
	for i := range 3 {
		if res, _, err := s.Send(ctx, "creator-1", creds, msg(t, fmt.Sprint("fan-", i+2), "more"), nil); err != nil || res.Status != 200 {
			t.Fatalf("send %d: %+v %v", i, res, err)
		}
	}
	// THEN the same page served them all (no new renderer per send)
	if kept == nil || s.KeptPageForTest("creator-1") != kept || kept.IsClosed() {
		t.Fatal("the kept page was not reused")
	}
	// WHEN a send times out before its click (the page may be stuck): the
	// chat is slow to open twice (inside a single-page app, then as the
	// document the sender loads instead)
	site.SlowChatPages(2, 9*time.Second)
	if _, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-9", "slow"), nil); !errors.Is(err, onlyfans.ErrTimeout) {
		t.Fatalf("want a timeout, got %v", err)
	}
	site.SlowChatPages(0, 0)
	// THEN that page is closed and the next send gets a fresh one
	if !kept.IsClosed() {
		t.Fatal("a page that timed out was kept")
	}
	if res, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-9", "again"), nil); err != nil || res.Status != 200 {
		t.Fatalf("after the timeout: %+v %v", res, err)
	}
	if p := s.KeptPageForTest("creator-1"); p == nil || p == kept {
		t.Fatal("no fresh kept page")
	}
	if got := site.Texts("creator-1"); len(got) != 5 {
		t.Fatalf("site got %v", got)
	}
}

func TestOnlyKeepContextsCreatorsStayOpen(t *testing.T) {
	t.Parallel()
	// GIVEN a sender keeping two creators open
	site := fakesite.Start(t)
	s := newSenderWith(t, site, onlyfans.Config{KeepContexts: 2})
	// WHEN three creators send in turn
	for _, c := range []string{"c1", "c2", "c3", "c1"} {
		creds := onlyfans.Credentials{SessionCookie: site.AddCreator(c)}
		if res, _, err := s.Send(context.Background(), c, creds, msg(t, "fan-1", "hi from "+c), nil); err != nil || res.Status != 200 {
			t.Fatalf("%s: %+v %v", c, res, err)
		}
		// THEN never more than two contexts are open, the least recently
		// used one closed first
		if n := s.ContextsForTest(); n > 2 {
			t.Fatalf("%d contexts open after %s", n, c)
		}
	}
	if s.KeptPageForTest("c2") != nil || s.KeptPageForTest("c1") == nil || s.KeptPageForTest("c3") == nil {
		t.Fatal("not the least recently used creator evicted")
	}
}

func TestTheProfilesBlockedImagesAndFontsAreNeverFetched(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		block   bool
		fetched bool
	}{{"default profile", true, false}, {"profile without block", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			// GIVEN a chat page with an avatar and a web font
			site := fakesite.Start(t)
			creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
			profile := browserharness.SiteProfile()
			if !tc.block {
				profile.Block = nil
			}
			s := newSenderWith(t, site, onlyfans.Config{Profile: profile})
			// WHEN a message is sent
			if res, _, err := s.Send(context.Background(), "creator-1", creds, msg(t, "fan-1", "hi"), nil); err != nil || res.Status != 200 {
				t.Fatalf("%+v %v", res, err)
			}
			// THEN the site served them only when the profile lets it
			if got := site.AssetRequests() > 0; got != tc.fetched {
				t.Fatalf("assets fetched: %t (%d requests)", got, site.AssetRequests())
			}
		})
	}
}

func TestAFailedSendCarriesItsPlaywrightTrace(t *testing.T) {
	t.Parallel()
	// GIVEN traces on and a site that refuses one send
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSenderWith(t, site, onlyfans.Config{Traces: true})
	ctx := context.Background()
	if _, art, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "fine"), nil); err != nil || art != nil {
		t.Fatalf("a successful send has captures: %v %v", art, err)
	}
	site.InjectFaults(fakesite.Fault{Status: 500})
	// WHEN it fails
	res, art, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "refused"), nil)
	// THEN its captures hold a trace zip (Playwright's format) of that send
	if err != nil || res.Status != 500 || art == nil || !bytes.HasPrefix(art.Trace, []byte("PK")) {
		t.Fatalf("res %+v err %v trace %d bytes", res, err, len(art.Trace))
	}
	if !bytes.Contains(art.Trace, []byte("trace.trace")) {
		t.Fatal("the zip holds no trace")
	}
}
