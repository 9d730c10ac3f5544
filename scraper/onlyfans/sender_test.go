package onlyfans_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/fakesite"
	"github.com/huntaze/message-pipeline/test/harness"
)

func newSender(t *testing.T, site *fakesite.Site) *onlyfans.Sender {
	t.Helper()
	opts := browser.Options{DriverDir: harness.DriverDir(t)}
	if err := opts.Check(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	s := onlyfans.New(onlyfans.Config{
		BaseURL: site.URL, Browser: opts, RecycleAfter: 2,
		Timeouts: onlyfans.Timeouts{Navigation: 5 * time.Second, Action: 3 * time.Second, Response: 2 * time.Second},
	})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func msg(t *testing.T, fan, content string, media ...string) message.Message {
	m, err := message.New("creator-1", fan, content, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m.MediaURLs = media
	return m
}

func TestSendTypesAttachesAndReadsTheSiteStatus(t *testing.T) {
	// GIVEN the fake site with a creator session
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSender(t, site)
	ctx := context.Background()

	// WHEN a message with media is sent
	m := msg(t, "fan-7", "hello fan 7", "https://cdn.example.com/a.jpg", "https://cdn.example.com/b.jpg")
	res, art, err := s.Send(ctx, "creator-1", creds, m, nil)

	// THEN the site recorded it with its media and answered 200
	if err != nil || res.Status != 200 || art != nil {
		t.Fatalf("Send = %+v, %v, %v", res, art, err)
	}
	sent := site.Sent()
	if len(sent) != 1 || sent[0].Fan != "fan-7" || sent[0].Text != "hello fan 7" || len(sent[0].Media) != 2 {
		t.Fatalf("site recorded %+v", sent)
	}
	// AND the chat now counts it once, a text never sent zero times
	if n, err := s.CountIdentical(ctx, "creator-1", creds, m); err != nil || n != 1 {
		t.Fatalf("CountIdentical = %d, %v", n, err)
	}
	if n, _ := s.CountIdentical(ctx, "creator-1", creds, msg(t, "fan-7", "another text")); n != 0 {
		t.Fatalf("CountIdentical = %d for a text never sent", n)
	}
	// AND a second identical text sees the first right before its click
	seen := -1
	if res, _, err := s.Send(ctx, "creator-1", creds, m, func(identical int) error { seen = identical; return nil }); err != nil || res.Status != 200 || seen != 1 {
		t.Fatalf("identical send: %+v, %v, saw %d identical before the click", res, err, seen)
	}
	if n, _ := s.CountIdentical(ctx, "creator-1", creds, m); n != 2 {
		t.Fatalf("CountIdentical = %d after two identical sends", n)
	}

	// WHEN the site answers 429 with Retry-After (after the context was recycled)
	site.InjectFaults(fakesite.Fault{Status: 429, RetryAfter: "7"})
	res, art, err = s.Send(ctx, "creator-1", creds, msg(t, "fan-7", "second"), nil)
	// THEN the status and the delay are read from the network, with artifacts
	if err != nil || res.Status != 429 || res.RetryAfter != 7*time.Second || art == nil || len(art.Screenshot) == 0 || art.HTML == "" {
		t.Fatalf("429: %+v, artifacts %v, %v", res, art != nil, err)
	}

	// WHEN the site never answers
	site.InjectFaults(fakesite.Fault{Delay: 5 * time.Second})
	_, _, err = s.Send(ctx, "creator-1", creds, msg(t, "fan-7", "third"), nil)
	// THEN it is a timeout
	if !errors.Is(err, onlyfans.ErrTimeout) {
		t.Fatalf("slow site: %v, want ErrTimeout", err)
	}
}

func TestSendWithAnExpiredSessionIs401(t *testing.T) {
	site := fakesite.Start(t)
	s := newSender(t, site)
	res, _, err := s.Send(context.Background(), "creator-1", onlyfans.Credentials{SessionCookie: "expired"}, msg(t, "fan-1", "hi"), nil)
	if err != nil || res.Status != 401 || len(site.Sent()) != 0 {
		t.Fatalf("expired session: %+v, %v", res, err)
	}
}

func TestCrashedBrowserIsRelaunched(t *testing.T) {
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSender(t, site)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	// GIVEN the browser died (closed under the sender)
	s.KillBrowserForTest()
	// WHEN a message is sent
	res, _, err := s.Send(context.Background(), "creator-1", creds, msg(t, "fan-1", "after crash"), nil)
	// THEN a new browser sends it
	if err != nil || res.Status != 200 || len(site.Sent()) != 1 {
		t.Fatalf("after crash: %+v, %v", res, err)
	}
}

func TestBeforeClickCanStopTheSend(t *testing.T) {
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSender(t, site)
	stop := errors.New("not now")
	_, _, err := s.Send(context.Background(), "creator-1", creds, msg(t, "fan-1", "held"), func(int) error { return stop })
	if !errors.Is(err, stop) || site.SendRequests() != 0 {
		t.Fatalf("err %v, %d requests", err, site.SendRequests())
	}
}
