package onlyfans_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/harness"
)

func TestTextsAreTypedAndCountedAsTheSiteStoresThem(t *testing.T) {
	t.Parallel()
	// GIVEN a corpus of texts a composer may rewrite
	corpus := map[string]string{
		"crlf":        "first line\r\nsecond line",
		"lone cr":     "first\rsecond",
		"tabs":        "a\tb\t\tc",
		"spaces":      "   padded both sides   ",
		"zwj emoji":   "family 👨\u200d👩\u200d👧\u200d👦 and flag 🏳️\u200d🌈",
		"rtl":         "مرحبا babe \u202eolleh",
		"combining":   "cafe\u0301 vs café",
		"max length":  strings.Repeat("é", message.MaxContentLength-2) + "\r\n",
		"blank lines": "a\r\n\r\n\r\nb",
	}
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSender(t, site)
	rules := onlyfans.DefaultProfile().Text
	ctx := context.Background()
	for name, text := range corpus {
		t.Run(name, func(t *testing.T) {
			if utf8.RuneCountInString(text) > message.MaxContentLength {
				t.Fatalf("corpus text longer than the API accepts")
			}
			fan := "fan-" + strings.ReplaceAll(name, " ", "-")
			m := msg(t, fan, text)
			// WHEN it is sent
			if res, _, err := s.Send(ctx, "creator-1", creds, m, nil); err != nil || res.Outcome != onlyfans.Sent {
				t.Fatalf("send: %+v %v", res, err)
			}
			// THEN the site stored exactly what the profile says is typed
			var stored string
			for _, x := range site.Sent() {
				if x.Fan == fan {
					stored = x.Text
				}
			}
			if stored != rules.Typed(text) {
				t.Fatalf("stored %q, the profile predicts %q", stored, rules.Typed(text))
			}
			// AND the chat counts it once against the raw queued text
			if n, err := s.CountIdentical(ctx, "creator-1", creds, m); err != nil || n != 1 {
				t.Fatalf("count %d, %v", n, err)
			}
		})
	}
	// AND a site that also trims and drops CRs is still counted right
	site.StoreAs(func(x string) string { return strings.TrimSpace(strings.ReplaceAll(x, "\r", "")) })
	m := msg(t, "fan-trim", "  trimmed by the server \r\n")
	if _, _, err := s.Send(ctx, "creator-1", creds, m, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountIdentical(ctx, "creator-1", creds, m); err != nil || n != 1 {
		t.Fatalf("count of a server-trimmed text %d, %v", n, err)
	}
}

func TestAnUnavailableSiteIsSiteDownWhateverTheCause(t *testing.T) {
	site := fakesite.Start(t)
	closed := freePort(t)
	hanging := hangingListener(t)
	storm := fakesite.Start(t)
	storm.SetOutage(fakesite.Storm)
	cases := []struct{ name, base string }{
		{"connection refused", "http://" + closed},
		{"name not resolved", "http://site.unresolvable.test"},
		{"tls failure", strings.Replace(site.URL, "http://", "https://", 1)},
		{"hanging", "http://" + hanging},
		{"5xx storm", storm.URL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The cases run side by side (each its own browser, mostly
			// waiting on its timeouts). The test itself is serial: a port
			// freePort let go must stay free while the cases run.
			t.Parallel()
			s := completeSender(t, onlyfans.Config{
				BaseURL: c.base, Browser: browser.Options{DriverDir: harness.DriverDir(t),
					ExtraArgs: []string{"--host-resolver-rules=MAP site.unresolvable.test ~NOTFOUND"}},
				Timeouts: onlyfans.Timeouts{Navigation: 1500 * time.Millisecond, Action: time.Second, Response: time.Second},
			})
			t.Cleanup(func() { _ = s.Close() })
			res, _, err := s.Send(context.Background(), "creator-1", onlyfans.Credentials{SessionCookie: "x"}, msg(t, "fan-1", "hi"), nil)
			if !errors.Is(err, onlyfans.ErrSiteDown) || res.Outcome != onlyfans.NotSent {
				t.Fatalf("%+v, %v: want ErrSiteDown, not sent", res, err)
			}
			if _, err := s.CheckSession(context.Background(), "creator-1", onlyfans.Credentials{SessionCookie: "x"}); !errors.Is(err, onlyfans.ErrSiteDown) {
				t.Fatalf("session check: %v", err)
			}
		})
	}
}

func TestOneClickReachesTheSiteOnceWhateverThePageAndTheConnectionDo(t *testing.T) {
	t.Parallel()
	// GIVEN a page that re-sends when its request fails, and a site that
	// records the send and then drops the connection before answering
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := newSender(t, site)
	ctx := context.Background()
	if _, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "warm up the keep-alive connection"), nil); err != nil {
		t.Fatal(err)
	}
	site.PageRetriesSends(true)
	site.InjectFaults(fakesite.Fault{Commit: true, Drop: true})
	// WHEN one message is clicked
	res, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "once"), nil)
	// THEN the outcome is unknown (no answer), the page issued two send
	// requests, and the site saw one
	if res.Outcome != onlyfans.Unknown || !errors.Is(err, onlyfans.ErrSiteDown) || res.Requests != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
	if site.SendRequests() != 2 || len(site.Sent()) != 2 {
		t.Fatalf("site saw %d requests, recorded %d", site.SendRequests(), len(site.Sent()))
	}
	// AND a send request the page issues outside a click never leaves
	page, err := s.PageForTest("creator-1", creds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := page.Goto(site.URL + "/my/chats/chat/fan-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := page.Evaluate(`() => fetch('/api2/v2/chats/fan-1/messages', {method: 'POST', body: JSON.stringify({text: 'stray'})}).catch(() => 'refused')`); err != nil {
		t.Fatal(err)
	}
	if site.SendRequests() != 2 || s.StraySendRequests() != 1 {
		t.Fatalf("stray request: site saw %d, sender refused %d", site.SendRequests(), s.StraySendRequests())
	}
}

func TestAFailedSendsTraceHoldsNoSessionButStillTheSteps(t *testing.T) {
	t.Parallel()
	site := fakesite.Start(t)
	secret := site.AddCreator("creator-1")
	creds := onlyfans.Credentials{SessionCookie: secret}
	s := newSenderWith(t, site, onlyfans.Config{Traces: true})
	ctx := context.Background()
	if _, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "fine"), nil); err != nil {
		t.Fatal(err)
	}
	site.InjectFaults(fakesite.Fault{Status: 400})
	_, art, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "refused text"), nil)
	if err != nil || art == nil || len(art.Trace) == 0 {
		t.Fatalf("no trace: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(art.Trace), int64(len(art.Trace)))
	if err != nil {
		t.Fatal(err)
	}
	steps := false
	for _, f := range zr.File {
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Contains(b, []byte(secret)) || strings.HasSuffix(f.Name, ".network") {
			t.Errorf("%s holds the session (or is the network log)", f.Name)
		}
		steps = steps || bytes.Contains(b, []byte("refused text"))
	}
	if !steps || strings.Contains(art.HTML, secret) {
		t.Fatalf("trace shows the steps: %t", steps)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// hangingListener accepts connections and never answers.
func hangingListener(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return fmt.Sprint(l.Addr())
}

// Serial, as the review test through a DNS name: the absent proxy's port
// (freePort) must not be taken by another test's server meanwhile.
func TestAPageCannotReachTheTasksCredentialEndpoints(t *testing.T) {
	// GIVEN a creator's page, in a browser whose every other request goes
	// to a proxy that is not there (so nothing this test does leaves
	// 127.0.0.1, blocked or not)
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
	s := completeSender(t, onlyfans.Config{BaseURL: site.URL, Browser: browser.Options{DriverDir: harness.DriverDir(t),
		ExtraArgs: []string{"--proxy-server=http://" + freePort(t)}},
		Timeouts: onlyfans.Timeouts{Navigation: 5 * time.Second, Action: 3 * time.Second, Response: 2 * time.Second}})
	t.Cleanup(func() { _ = s.Close() })
	page, err := s.PageForTest("creator-1", creds)
	if err != nil {
		t.Fatal(err)
	}
	// WHEN its script fetches from or opens a WebSocket to them
	if _, err := page.Goto(site.URL + "/my/chats/chat/fan-1"); err != nil {
		t.Fatal(err)
	}
	got, err := page.Evaluate(`async () => {
		const out = [];
		try { await fetch('http://169.254.170.2/v2/credentials/uuid'); out.push('fetched'); } catch (e) { out.push('refused'); }
		out.push(await new Promise(r => { const ws = new WebSocket('ws://169.254.170.2/'); ws.onopen = () => r('open'); ws.onerror = ws.onclose = () => r('closed'); }));
		return out.join(',');
	}`)
	// THEN neither gets through
	if err != nil || got != "refused,closed" {
		t.Fatalf("page script: %v, %v", got, err)
	}
	// AND a navigation there is refused by the browser itself, in every
	// form of the address
	for _, u := range []string{"http://169.254.170.2/v2/credentials/uuid", "http://169.254.169.254/latest/meta-data/", "http://2852039166/", "http://[::ffff:169.254.169.254]/"} {
		if _, err := page.Goto(u); err == nil || !strings.Contains(err.Error(), "ERR_BLOCKED_BY_CLIENT") {
			t.Errorf("navigate %s: %v", u, err)
		}
	}
	// (what a request that is not blocked meets is the absent proxy)
	if _, err := page.Goto("http://10.1.2.3/"); err == nil || strings.Contains(err.Error(), "ERR_BLOCKED_BY_CLIENT") {
		t.Fatalf("an ordinary host: %v", err)
	}
}
