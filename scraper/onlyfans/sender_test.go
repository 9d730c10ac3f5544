package onlyfans_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
	scrapersetup "github.com/huntaze/message-pipeline/scraper/setup"
	"github.com/huntaze/message-pipeline/test/browserharness"
	"github.com/huntaze/message-pipeline/test/harness"
)

// The tests run in parallel (t.Parallel): each starts its own fake site and
// sender (its own browser). Those that need a port to stay free stay serial.
func newSender(t *testing.T, site *fakesite.Site) *onlyfans.Sender {
	t.Helper()
	return newSenderFor(t, site, browserharness.SiteProfile())
}

// variants are the fake site's DOMs and the profile that reaches each: the
// same tests pass against each by switching the profile only. The first is
// the tests' variant (fakesite.TestVariant: A, or A as a single-page app).
var variants = []struct {
	site    fakesite.Variant
	profile string // file; "" is the tests' profile (browserharness.SiteProfile)
}{{fakesite.TestVariant(), ""}, {fakesite.VariantB, "testdata/variant-b.json"}}

func newSenderFor(t *testing.T, site *fakesite.Site, profile onlyfans.Profile) *onlyfans.Sender {
	t.Helper()
	opts := browser.Options{DriverDir: harness.DriverDir(t)}
	if err := opts.Check(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	s := completeSender(t, onlyfans.Config{
		BaseURL: site.URL, Browser: opts, RecycleAfter: 2, Profile: profile,
		Timeouts: onlyfans.Timeouts{Navigation: 5 * time.Second, Action: 3 * time.Second, Response: 2 * time.Second},
	})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// completeSender is onlyfans.New of cfg with what the scraper's default
// settings give (scraper/settings, where the defaults live) for the profile,
// the recycling and the kept pages when cfg leaves them unset.
func completeSender(t *testing.T, cfg onlyfans.Config) *onlyfans.Sender {
	t.Helper()
	d, err := scrapersetup.Sender(scrapersettings.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Profile.Name == "" {
		cfg.Profile = browserharness.SiteProfile()
	}
	if cfg.RecycleAfter == 0 {
		cfg.RecycleAfter = d.RecycleAfter
	}
	if cfg.KeepContexts == 0 {
		cfg.KeepContexts = d.KeepContexts
	}
	s, err := onlyfans.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func msg(t *testing.T, fan, content string) message.Message {
	m, err := message.New("creator-1", fan, content, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// onEachVariant runs test against each variant of the fake site with the
// profile that reaches it.
func onEachVariant(t *testing.T, test func(t *testing.T, site *fakesite.Site, profile onlyfans.Profile)) {
	for _, v := range variants {
		t.Run(v.site.Name, func(t *testing.T) {
			profile := browserharness.SiteProfile()
			if v.profile != "" {
				var err error
				if profile, err = onlyfans.LoadProfile(v.profile); err != nil {
					t.Fatal(err)
				}
			}
			test(t, fakesite.StartVariant(t, v.site), profile)
		})
	}
}

func TestSendTypesAndReadsTheSiteStatusOnEitherVariant(t *testing.T) {
	t.Parallel()
	onEachVariant(t, testSendTypesAndReadsTheSiteStatus)
}

func testSendTypesAndReadsTheSiteStatus(t *testing.T, site *fakesite.Site, profile onlyfans.Profile) {
	// GIVEN the fake site with a creator session
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSenderFor(t, site, profile)
	ctx := context.Background()

	// WHEN a message is sent
	m := msg(t, "fan-7", "hello fan 7")
	res, art, err := s.Send(ctx, "creator-1", creds, m, nil)

	// THEN the site recorded it and answered 200
	if err != nil || res.Status != 200 || art != nil {
		t.Fatalf("Send = %+v, %v, %v", res, art, err)
	}
	sent := site.Sent()
	if len(sent) != 1 || sent[0].Fan != "fan-7" || sent[0].Text != "hello fan 7" {
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
	if res, _, err := s.Send(ctx, "creator-1", creds, m, func(before onlyfans.Mark) error { seen = before.Identical; return nil }); err != nil || res.Status != 200 || seen != 1 {
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

func TestSendWithAnExpiredSessionIs401OnEitherVariant(t *testing.T) {
	t.Parallel()
	onEachVariant(t, func(t *testing.T, site *fakesite.Site, profile onlyfans.Profile) {
		s := newSenderFor(t, site, profile)
		res, _, err := s.Send(context.Background(), "creator-1", onlyfans.Credentials{SessionCookie: "expired"}, msg(t, "fan-1", "hi"), nil)
		if err != nil || res.Status != 401 || len(site.Sent()) != 0 {
			t.Fatalf("expired session: %+v, %v", res, err)
		}
		if _, err := s.CountIdentical(context.Background(), "creator-1", onlyfans.Credentials{SessionCookie: "expired"}, msg(t, "fan-1", "hi")); !isStatus(err, 401) {
			t.Fatalf("chat count with an expired session: %v", err)
		}
	})
}

func TestTheSessionCookieIsHttpOnlySecureAndSameSite(t *testing.T) {
	t.Parallel()
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSender(t, site)
	if res, _, err := s.Send(context.Background(), "creator-1", creds, msg(t, "fan-1", "hi"), nil); err != nil || res.Status != 200 {
		t.Fatalf("send: %+v, %v", res, err)
	}
	cookies, err := s.CookiesForTest("creator-1")
	if err != nil || len(cookies) != 1 {
		t.Fatalf("cookies %v, %v", cookies, err)
	}
	// The browser keeps HttpOnly and SameSite; it drops Secure on this
	// plain-http test site, so the cookie as set is checked for it.
	c := cookies[0]
	if c.Name != "sess" || !c.HttpOnly || c.SameSite == nil || *c.SameSite != *playwright.SameSiteAttributeLax {
		t.Fatalf("session cookie %+v", c)
	}
	if set := s.SessionCookieForTest(creds); set.Secure == nil || !*set.Secure || set.HttpOnly == nil || !*set.HttpOnly {
		t.Fatalf("cookie as set: %+v", set)
	}
}

func TestProfilesAreValidatedWithTheFieldNamed(t *testing.T) {
	t.Parallel()
	if err := onlyfans.DefaultProfile().Validate(); err != nil {
		t.Fatalf("default profile: %v", err)
	}
	if err := onlyfans.SPAProfile().Validate(); err != nil {
		t.Fatalf("single-page app profile: %v", err)
	}
	_, err := onlyfans.ParseProfile([]byte(`{"name":"x","baseUrl":"ftp://x","chatPath":"/chat","input":"#i","send":"","history":"h","sendRequest":{"method":"GET","url":"**/x"},"sessionCookie":{"name":"s","sameSite":"Sometimes"},"login":{}}`))
	for _, want := range []string{"baseUrl", "chatPath", "send is required", "sendRequest.method", "sessionCookie.sameSite", "login needs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
	if _, err := onlyfans.ParseProfile([]byte(`{"name":"x","chatPth":"/c/{fan}"}`)); err == nil || !strings.Contains(err.Error(), "chatPth") {
		t.Errorf("a misspelt key: %v", err)
	}
}

func TestGatewayStatusesDefaultTo502To504AndACDNsOriginErrorsAndMustBe5xx(t *testing.T) {
	t.Parallel()
	p := onlyfans.DefaultProfile()
	for status, want := range map[int]bool{500: false, 501: false, 502: true, 503: true, 504: true, 505: false, 519: false, 520: true, 522: true, 524: true, 527: true, 528: false, 403: false, 0: false} {
		if got := p.Gateway(status); got != want {
			t.Errorf("default profile: Gateway(%d) = %t, want %t", status, got, want)
		}
	}
	p.GatewayStatuses = []int{500, 502}
	if !p.Gateway(500) || p.Gateway(504) {
		t.Errorf("gatewayStatuses [500 502]: Gateway(500) %t, Gateway(504) %t", p.Gateway(500), p.Gateway(504))
	}
	p.GatewayStatuses = []int{404}
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "gatewayStatuses") {
		t.Errorf("gatewayStatuses [404]: %v", err)
	}
}

func TestCrashedBrowserIsRelaunched(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSender(t, site)
	stop := errors.New("not now")
	_, _, err := s.Send(context.Background(), "creator-1", creds, msg(t, "fan-1", "held"), func(onlyfans.Mark) error { return stop })
	if !errors.Is(err, stop) || site.SendRequests() != 0 {
		t.Fatalf("err %v, %d requests", err, site.SendRequests())
	}
}

func isStatus(err error, status int) bool {
	var se *onlyfans.StatusError
	return errors.As(err, &se) && se.Status == status
}
