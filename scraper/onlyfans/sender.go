// Package onlyfans sends a message as a creator through a real browser:
// open the fan's chat, type, attach media, click send, and read the HTTP
// status of the site's own send request from the network.
package onlyfans

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/message"
)

// Credentials of one creator's session.
type Credentials struct {
	SessionCookie string `json:"sessionCookie"`
	// Version identifies this session (the secret's version): a creator
	// paused for a rejected session resumes when it changes.
	Version string `json:"-"`
}

// Timeouts bound every step.
type Timeouts struct {
	Navigation time.Duration
	Action     time.Duration
	Response   time.Duration
}

// Config of the sender.
type Config struct {
	// BaseURL overrides the profile's (local runs: the fake site).
	BaseURL  string
	Browser  browser.Options
	Profile  Profile
	Timeouts Timeouts
	// RecycleAfter closes a creator's browser context after that many sends
	// (memory of long-lived pages grows).
	RecycleAfter int
	// KeepContexts bounds the creators whose context and chat page stay
	// open between sends (the least recently used idle one is closed
	// beyond it). A kept page is navigated to the next chat instead of
	// starting a renderer process per send: most of a send's CPU.
	KeepContexts int
	// Traces records a Playwright trace of every send and returns it as
	// Artifacts.Trace when the send does not succeed.
	Traces bool
}

// Outcome of a send at the site.
type Outcome int

const (
	// NotSent: no send request left the page, or the site refused it (4xx).
	NotSent Outcome = iota
	// Sent: the site accepted it (2xx).
	Sent
	// Unknown: clicked, and the site may have taken it (5xx, 3xx, no
	// answer, a dropped connection): only a read-back of the chat settles it.
	Unknown
)

// Result of one send.
type Result struct {
	Outcome    Outcome
	Status     int           // HTTP status of the site's send request
	RetryAfter time.Duration // from Retry-After on 429/503
	// Requests is how many send requests the page issued for the click;
	// only the first reached the site.
	Requests int
	// LoginPage: the site showed its login page (Profile.Login) instead of
	// the chat: proof on its own that the session is rejected.
	LoginPage bool
}

// Artifacts are captured when a send does not succeed.
type Artifacts struct {
	Screenshot []byte
	HTML       string
	Trace      []byte // Playwright trace zip (Config.Traces)
}

// ErrTimeout marks a step that did not finish in time.
var ErrTimeout = errors.New("browser step timed out")

// ErrSiteDown marks a site that is unreachable (refused, DNS, TLS, reset),
// hanging or failing (5xx pages): an outage, never the message's fault.
var ErrSiteDown = errors.New("site unavailable")

// ErrBrowser marks a browser that crashed or failed.
var ErrBrowser = errors.New("browser failure")

// ErrBrowserDown marks a browser that cannot be (re)started (out of
// memory, /tmp full, a broken image): the task's outage, never a message's
// fault. It also matches ErrBrowser.
var ErrBrowserDown = errors.New("browser cannot start")

type creatorContext struct {
	ctx     playwright.BrowserContext
	version string // of the session its cookie holds
	sends   int
	// page is the kept chat page, busy while a send or a count uses it.
	page     playwright.Page
	busy     bool
	lastUsed time.Time
	tracing  bool
}

// Sender owns one browser and one context per creator.
type Sender struct {
	cfg      Config
	mu       sync.Mutex
	session  *browser.Session
	contexts map[string]*creatorContext
	// armed is the click window of each page sending now.
	armed  map[playwright.Page]*attempt
	strays int
}

// Validate reports a configuration the sender cannot run with. Every
// field comes from the scraper's settings (scraper/settings), where the
// defaults are: nothing is filled in here.
func (c Config) Validate() error {
	var errs []error
	if c.Profile.Name == "" {
		errs = append(errs, errors.New("onlyfans: a site profile is required"))
	}
	if c.RecycleAfter < 1 || c.KeepContexts < 0 {
		errs = append(errs, fmt.Errorf("onlyfans: recycle after must be ≥ 1 and kept contexts ≥ 0, got %d and %d", c.RecycleAfter, c.KeepContexts))
	}
	if t := c.Timeouts; t.Navigation <= 0 || t.Action <= 0 || t.Response <= 0 {
		errs = append(errs, fmt.Errorf("onlyfans: navigation, action and response timeouts must be positive, got %s, %s, %s", t.Navigation, t.Action, t.Response))
	}
	return errors.Join(errs...)
}

// New returns a sender; the browser starts on first use. BaseURL, when
// empty, is the profile's.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = cfg.Profile.BaseURL
	}
	return &Sender{cfg: cfg, contexts: map[string]*creatorContext{}, armed: map[playwright.Page]*attempt{}}, nil
}

// Profile is the site profile the sender uses.
func (s *Sender) Profile() Profile { return s.cfg.Profile }

// Sandboxed says whether the running browser's renderers are sandboxed,
// and if not why (browser.Options.Sandbox).
func (s *Sender) Sandboxed() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil {
		return false, errors.New("browser not started")
	}
	return s.session.Sandboxed, s.session.SandboxError
}

// Start launches the browser now (to fail fast at startup).
func (s *Sender) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ensureBrowser()
}

func (s *Sender) ensureBrowser() error {
	if s.session != nil && s.session.Browser.IsConnected() {
		return nil
	}
	if s.session != nil { // crashed: start over
		_ = s.session.Close()
		s.session, s.contexts = nil, map[string]*creatorContext{}
	}
	sess, err := browser.Start(s.cfg.Browser)
	if err != nil {
		return fmt.Errorf("%w: %w: %v", ErrBrowserDown, ErrBrowser, err)
	}
	s.session = sess
	return nil
}

// chat is a page of a creator's context lent to one send or count.
type chat struct {
	page playwright.Page
	cc   *creatorContext
	kept bool // the context's kept page (else a spare, closed after use)
}

// lend returns the creator's kept page, opening the context and the page
// when needed; when the kept page is busy, a spare page of the same
// context.
func (s *Sender) lend(creator string, creds Credentials) (*chat, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureBrowser(); err != nil {
		return nil, err
	}
	cc := s.contexts[creator]
	if cc != nil && !cc.busy && (cc.sends >= s.cfg.RecycleAfter || cc.version != creds.Version) {
		_ = cc.ctx.Close()
		delete(s.contexts, creator)
		cc = nil
	}
	if cc == nil {
		var err error
		if cc, err = s.newContext(creds); err != nil {
			return nil, err
		}
		s.contexts[creator] = cc
		s.evictIdle(creator)
	}
	cc.sends++
	cc.lastUsed = time.Now()
	if cc.busy {
		page, err := cc.ctx.NewPage()
		if err != nil {
			return nil, fmt.Errorf("%w: new page: %v", ErrBrowser, err)
		}
		return &chat{page: page, cc: cc}, nil
	}
	if cc.page == nil || cc.page.IsClosed() {
		page, err := cc.ctx.NewPage()
		if err != nil {
			return nil, fmt.Errorf("%w: new page: %v", ErrBrowser, err)
		}
		cc.page = page
	}
	cc.busy = true
	return &chat{page: cc.page, cc: cc, kept: true}, nil
}

// giveBack ends a loan: a kept page that served well stays open for the
// creator's next send; a spare page, or one that failed (it may be stuck
// mid-action), is closed.
func (s *Sender) giveBack(c *chat, healthy bool) {
	if !c.kept || !healthy {
		_ = c.page.Close()
	}
	if !c.kept {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.cc.busy = false
	if !healthy {
		c.cc.page = nil
	}
}

func (s *Sender) newContext(creds Credentials) (*creatorContext, error) {
	bctx, err := s.session.Browser.NewContext()
	if err != nil {
		return nil, fmt.Errorf("%w: new context: %v", ErrBrowser, err)
	}
	if err := bctx.AddCookies([]playwright.OptionalCookie{s.sessionCookie(creds)}); err != nil {
		_ = bctx.Close()
		return nil, fmt.Errorf("%w: cookies: %v", ErrBrowser, err)
	}
	// What the profile says a send never needs (images, fonts, media) is
	// not fetched: CPU and bandwidth for nothing.
	for _, glob := range s.cfg.Profile.Block {
		if err := bctx.Route(glob, func(r playwright.Route) { _ = r.Abort("blockedbyclient") }); err != nil {
			_ = bctx.Close()
			return nil, fmt.Errorf("%w: block %s: %v", ErrBrowser, glob, err)
		}
	}
	// The task's credential endpoints (169.254.170.2, 169.254.169.254 and
	// the rest of link-local, IPv4 and the IPv6 forms) are out of the
	// page's reach, for requests and WebSockets alike.
	if err := bctx.Route(browser.LinkLocalURL, func(r playwright.Route) { _ = r.Abort("blockedbyclient") }); err != nil {
		_ = bctx.Close()
		return nil, fmt.Errorf("%w: block link-local: %v", ErrBrowser, err)
	}
	if err := bctx.RouteWebSocket(browser.LinkLocalURL, func(ws playwright.WebSocketRoute) { ws.Close() }); err != nil {
		_ = bctx.Close()
		return nil, fmt.Errorf("%w: block link-local websockets: %v", ErrBrowser, err)
	}
	// A name is no safer than the address it resolves to: a host other
	// than the site's, by a name, is blocked when the name embeds a
	// link-local address (wildcard DNS: 169.254.170.2.nip.io) or resolves
	// to one. The site's own host is not looked up (it is configuration).
	if err := bctx.Route(hostName, s.routeForeignName); err != nil {
		_ = bctx.Close()
		return nil, fmt.Errorf("%w: block link-local names: %v", ErrBrowser, err)
	}
	if err := bctx.RouteWebSocket(hostName, func(ws playwright.WebSocketRoute) {
		if s.foreignName(ws.URL()) && s.linkLocalHost(ws.URL()) {
			ws.Close()
			return
		}
		ws.ConnectToServer()
	}); err != nil {
		_ = bctx.Close()
		return nil, fmt.Errorf("%w: block link-local websocket names: %v", ErrBrowser, err)
	}
	if err := bctx.Route(s.cfg.Profile.SendRequest.URL, s.routeSend); err != nil {
		_ = bctx.Close()
		return nil, fmt.Errorf("%w: intercept sends: %v", ErrBrowser, err)
	}
	cc := &creatorContext{ctx: bctx, version: creds.Version}
	if s.cfg.Traces {
		// Snapshots and network, no screenshots: the trace of a failed
		// send shows each step's DOM at a small cost per send.
		cc.tracing = bctx.Tracing().Start(playwright.TracingStartOptions{Snapshots: playwright.Bool(true), Screenshots: playwright.Bool(false)}) == nil
	}
	return cc, nil
}

// hostName matches URLs whose host is a name (it holds a letter; address
// literals are browser.LinkLocalURL's): a regular expression, so that the
// driver intercepts only those (a Go predicate would make every request
// of the page wait for a round trip to this process).
var hostName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#@]*@)?[^/?#@:\[]*[a-zA-Z][^/?#@:\[]*(:\d+)?([/?#]|$)`)

// nameLookupTimeout bounds the lookup of a foreign host's name.
const nameLookupTimeout = 2 * time.Second

// foreignName reports whether u's host is a name (not an address literal:
// browser.LinkLocalURL covers those) other than the site's host.
func (s *Sender) foreignName(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Hostname() == "" || net.ParseIP(p.Hostname()) != nil {
		return false
	}
	base, err := url.Parse(s.cfg.BaseURL)
	return err != nil || !strings.EqualFold(p.Hostname(), base.Hostname())
}

// linkLocalHost reports whether u's host name is, or resolves to, a
// link-local address.
func (s *Sender) linkLocalHost(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return true
	}
	h := p.Hostname()
	return browser.LinkLocalName(h) || browser.ResolvesToLinkLocal(context.Background(), net.DefaultResolver, h, nameLookupTimeout)
}

func (s *Sender) routeForeignName(r playwright.Route) {
	if u := r.Request().URL(); s.foreignName(u) && s.linkLocalHost(u) {
		_ = r.Abort("blockedbyclient")
		return
	}
	_ = r.Fallback()
}

// evictIdle closes the least recently used idle contexts beyond
// KeepContexts (never keep, the one being lent).
func (s *Sender) evictIdle(keep string) {
	for len(s.contexts) > s.cfg.KeepContexts {
		oldest := ""
		for name, cc := range s.contexts {
			if name != keep && !cc.busy && (oldest == "" || cc.lastUsed.Before(s.contexts[oldest].lastUsed)) {
				oldest = name
			}
		}
		if oldest == "" {
			return
		}
		_ = s.contexts[oldest].ctx.Close()
		delete(s.contexts, oldest)
	}
}

// sessionCookie is the creator's session cookie as the site sets it: out
// of reach of page scripts, never sent in clear (a browser drops Secure on
// a plain-http test site), not sent on cross-site requests.
func (s *Sender) sessionCookie(creds Credentials) playwright.OptionalCookie {
	sameSite, _ := s.cfg.Profile.sameSite() // validated at load
	return playwright.OptionalCookie{
		Name: s.cfg.Profile.SessionCookie.Name, Value: creds.SessionCookie, URL: playwright.String(s.cfg.BaseURL),
		HttpOnly: playwright.Bool(true), Secure: playwright.Bool(true), SameSite: sameSite,
	}
}

// Close closes every context and the browser.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil {
		return nil
	}
	err := s.session.Close()
	s.session, s.contexts = nil, map[string]*creatorContext{}
	return err
}

func (s *Sender) openChat(page playwright.Page, fan string) (*Result, error) {
	resp, err := page.Goto(s.cfg.Profile.chatURL(s.cfg.BaseURL, fan), playwright.PageGotoOptions{Timeout: ms(s.cfg.Timeouts.Navigation)})
	if err != nil {
		// Refused, unresolvable, TLS-failing, reset or hanging: the site
		// (or the way to it) is down, not this message.
		return nil, fmt.Errorf("%w: %w", ErrSiteDown, classify("open chat", err))
	}
	if s.onLoginPage(page) {
		return &Result{Status: 401, LoginPage: true}, nil
	}
	if resp != nil && resp.Status() >= 500 {
		return nil, fmt.Errorf("%w: chat page answered %d", ErrSiteDown, resp.Status())
	}
	if resp != nil && resp.Status() >= 400 {
		return &Result{Status: resp.Status(), RetryAfter: retryAfter(resp.Headers())}, nil
	}
	// A chat page without its composer (a maintenance page, the script
	// bundle's CDN down, a front-end that failed to render) is the page's
	// failure, not this message's: an outage. Its history is not read
	// either (it would count nothing and call an unknown send not sent).
	if err := page.Locator(s.cfg.Profile.Input).First().WaitFor(playwright.LocatorWaitForOptions{
		State: playwright.WaitForSelectorStateAttached, Timeout: ms(s.cfg.Timeouts.Action)}); err != nil {
		return nil, fmt.Errorf("%w: the chat page shows no composer (%s): %w", ErrSiteDown, s.cfg.Profile.Input, classify("open chat", err))
	}
	return nil, nil
}

// Send sends msg as creator. beforeClick (may be nil) runs after the page
// is ready and right before the send click, with the Mark of the chat at
// that moment (how many messages of the same text it shows to that fan,
// and the messages shown last: ReadBack's anchor): an error from it stops
// the send unclicked and is returned as is (the scraper's rate gate and
// attempt mark use it, so the time it admits is the time the site sees).
//
// The site's send request never leaves through Chromium's network stack:
// the sender intercepts it and makes it itself, once, without retries
// (Chromium silently re-sends a POST whose reused keep-alive connection
// closed before an answer; a request made here cannot be replayed). Any
// further send request the page issues for the same click is counted in
// Result.Requests and refused, so one click reaches the site at most once.
//
// Result.Outcome says whether the site took the message: Sent (2xx),
// NotSent (no click, or a 4xx), Unknown (5xx, 3xx, no answer, a crash
// after the click): only reading the chat back settles an unknown one.
// Errors: ErrSiteDown (the site is unreachable, hanging or failing, or its
// chat page shows no composer: an outage), ErrBrowserDown (the browser
// cannot start: the task's outage), ErrTimeout, ErrBrowser. A chat page
// showing the login page is Result.LoginPage (Status 401). Artifacts (scrubbed of the session) are
// returned whenever the send did not end with a 2xx.
func (s *Sender) Send(ctx context.Context, creator string, creds Credentials, msg message.Message, beforeClick func(before Mark) error) (res Result, art *Artifacts, err error) {
	c, err := s.lend(creator, creds)
	if err != nil {
		return Result{}, nil, err
	}
	traced := c.kept && c.cc.tracing && c.cc.ctx.Tracing().StartChunk(playwright.TracingStartChunkOptions{Title: playwright.String(msg.MessageID)}) == nil
	stoppedBeforeClick := false
	defer func() {
		if traced {
			art = s.endTrace(c, art)
		}
		art = scrubArtifacts(art, creds.SessionCookie)
		// A timeout or browser error may leave the page stuck mid-action;
		// a send stopped by beforeClick only left typed text, which the
		// next navigation drops.
		s.giveBack(c, (err == nil && res.Outcome != Unknown) || stoppedBeforeClick)
	}()
	page := c.page
	early, err := s.openChat(page, msg.RecipientID)
	if errors.Is(err, ErrSiteDown) {
		// No page of the site to capture (an error page, or a navigation
		// still waiting on a hanging site).
		return Result{}, nil, err
	}
	if err != nil || early != nil {
		if early != nil {
			res = *early
		}
		return res, capture(page), err
	}
	act := func(what string, f func() error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := f(); err != nil {
			return classify(what, err)
		}
		return nil
	}
	timeout := ms(s.cfg.Timeouts.Action)
	if err := act("type message", func() error {
		return page.Locator(s.cfg.Profile.Input).Fill(s.cfg.Profile.Text.Typed(msg.Content), playwright.LocatorFillOptions{Timeout: timeout})
	}); err != nil {
		return Result{}, capture(page), err
	}
	if beforeClick != nil {
		shown, complete, err := s.history(page)
		if err != nil {
			return Result{}, capture(page), err
		}
		mark := NewMark(shown, s.digest(msg.Content))
		mark.Complete = complete
		if err := beforeClick(mark); err != nil {
			stoppedBeforeClick = true
			return Result{}, nil, err
		}
	}
	att := s.arm(page)
	defer s.disarm(page)
	clickErr := act("send", func() error {
		return page.Locator(s.cfg.Profile.Send).Click(playwright.LocatorClickOptions{Timeout: timeout})
	})
	if clickErr != nil && att.issued() == 0 {
		// Nothing left the page: not sent.
		return Result{}, capture(page), clickErr
	}
	ans, answered := att.wait(ctx, s.cfg.Timeouts.Response+answerGrace)
	if !answered || ans.err != nil || !(ans.status >= 200 && ans.status < 300) {
		// The page may issue more send requests (its own retry): give it
		// a moment so that they are counted (and refused).
		time.Sleep(settle)
	}
	res.Requests = att.issued()
	switch {
	case !answered:
		res.Outcome = Unknown
		return res, capture(page), fmt.Errorf("%w: %w: send: no answer within %s", ErrSiteDown, ErrTimeout, s.cfg.Timeouts.Response+answerGrace)
	case ans.err != nil:
		res.Outcome = Unknown
		e := classify("send", ans.err)
		if errors.Is(e, ErrTimeout) {
			return res, capture(page), fmt.Errorf("%w: %w", ErrSiteDown, e)
		}
		return res, capture(page), fmt.Errorf("%w: send request got no answer: %v", ErrSiteDown, ans.err)
	}
	res.Status, res.RetryAfter = ans.status, retryAfter(ans.headers)
	switch {
	case res.Status >= 200 && res.Status < 300:
		res.Outcome = Sent
		return res, nil, nil
	case res.Status >= 400 && res.Status < 500:
		res.Outcome = NotSent
	default: // 5xx (a gateway may answer after its origin committed), 3xx
		res.Outcome = Unknown
	}
	return res, capture(page), nil
}

// answerGrace is how much longer than the request's own timeout Send waits
// for the intercepted send request to finish.
const answerGrace = 2 * time.Second

// settle is how long Send waits after a send without a clean answer for
// the page's own further send requests (counted, refused).
const settle = 300 * time.Millisecond

// answer is what the site said to the one send request let through.
type answer struct {
	status  int
	headers map[string]string
	err     error
}

// attempt is one click's send requests: the first one reaches the site,
// made by the sender; later ones are counted and refused.
type attempt struct {
	mu       sync.Mutex
	requests int
	done     chan struct{}
	ans      answer
}

// take counts a send request and reports whether it is the one let
// through.
func (a *attempt) take() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	return a.requests == 1
}

func (a *attempt) issued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

func (a *attempt) finish(ans answer) {
	a.mu.Lock()
	a.ans = ans
	a.mu.Unlock()
	close(a.done)
}

func (a *attempt) wait(ctx context.Context, d time.Duration) (answer, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.done:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.ans, true
	case <-t.C:
	case <-ctx.Done():
	}
	return answer{}, false
}

// arm opens page's click window: its next send request goes to the site.
func (s *Sender) arm(page playwright.Page) *attempt {
	a := &attempt{done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed[page] = a
	return a
}

func (s *Sender) disarm(page playwright.Page) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.armed, page)
}

// StraySendRequests counts the send requests pages issued outside a click
// (refused: nothing reaches the site without the gate's admission).
func (s *Sender) StraySendRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.strays
}

// routeSend handles every request matching the profile's send request in
// a creator's context: the armed click's first request is made here, once
// (MaxRetries 0, no redirects followed); every other one is refused.
func (s *Sender) routeSend(r playwright.Route) {
	req := r.Request()
	if !strings.EqualFold(req.Method(), s.cfg.Profile.SendRequest.Method) {
		_ = r.Fallback()
		return
	}
	var a *attempt
	if f := req.Frame(); f != nil {
		if p := f.Page(); p != nil {
			s.mu.Lock()
			a = s.armed[p]
			s.mu.Unlock()
		}
	}
	if a == nil || !a.take() {
		if a == nil {
			s.mu.Lock()
			s.strays++
			s.mu.Unlock()
		}
		_ = r.Abort("blockedbyclient")
		return
	}
	resp, err := r.Fetch(playwright.RouteFetchOptions{MaxRetries: playwright.Int(0), MaxRedirects: playwright.Int(0), Timeout: ms(s.cfg.Timeouts.Response)})
	if err != nil {
		a.finish(answer{err: err})
		_ = r.Abort("connectionfailed")
		return
	}
	a.finish(answer{status: resp.Status(), headers: resp.Headers()})
	_ = r.Fulfill(playwright.RouteFulfillOptions{Response: resp})
}

// endTrace ends the send's trace chunk: kept in art when there is a
// capture (the send did not succeed), discarded otherwise.
func (s *Sender) endTrace(c *chat, art *Artifacts) *Artifacts {
	tr := c.cc.ctx.Tracing()
	if art == nil {
		_ = tr.StopChunk()
		return nil
	}
	f, err := os.CreateTemp("", "trace-*.zip")
	if err != nil {
		_ = tr.StopChunk()
		return art
	}
	path := f.Name()
	_ = f.Close()
	defer os.Remove(path)
	if tr.StopChunk(path) == nil {
		art.Trace, _ = os.ReadFile(path)
	}
	return art
}

// CountIdentical returns how many messages with msg's text (as the site
// stores it: Profile.Text) the fan's chat shows. Identical texts ("Thank
// you babe") are distinct messages, so presence alone proves nothing: an
// unknown click is judged by ReadBack. Errors as ReadBack's.
func (s *Sender) CountIdentical(ctx context.Context, creator string, creds Credentials, msg message.Message) (int, error) {
	v, err := s.ReadBack(ctx, creator, creds, msg, Mark{Legacy: true})
	return v.Identical, err
}

// ReadBack reads the fan's chat and judges against before (the Mark Send
// gave beforeClick) whether that click sent msg (Mark.Judge): a copy of
// its text after the messages shown last at the click is this click's. A
// chat the site will not show is a *StatusError (the caller tells the
// session from the fan by CheckSession); an unreachable or failing site is
// ErrSiteDown.
func (s *Sender) ReadBack(ctx context.Context, creator string, creds Credentials, msg message.Message, before Mark) (v Verdict, err error) {
	c, err := s.lend(creator, creds)
	if err != nil {
		return Verdict{}, err
	}
	defer func() { s.giveBack(c, err == nil) }()
	early, err := s.openChat(c.page, msg.RecipientID)
	if err != nil {
		return Verdict{}, err
	}
	if early != nil {
		return Verdict{}, &StatusError{Status: early.Status, RetryAfter: early.RetryAfter, LoginPage: early.LoginPage}
	}
	shown, complete, err := s.history(c.page)
	if err != nil {
		return Verdict{}, err
	}
	return before.JudgeChat(shown, complete, s.digest(msg.Content)), nil
}

// digest is the digest of text's key (Shown.Key).
func (s *Sender) digest(text string) string { return Digest(s.cfg.Profile.Text.Key(text)) }

// StatusError is a chat page the site refused with Status (LoginPage: it
// showed its login page).
type StatusError struct {
	Status     int
	RetryAfter time.Duration
	LoginPage  bool
}

func (e *StatusError) Error() string { return fmt.Sprintf("chat page answered %d", e.Status) }

// CheckSession asks the site, with the creator's session, whether the
// session is still good (Profile.SessionCheck): before a creator is paused
// for an answer that may be about the session, and to re-probe a paused
// one. Its answer is read, not only its status:
//   - good: a 2xx JSON object holding SessionCheck.Identity (a positive
//     proof of who is logged in);
//   - rejected: a 401, a redirect, or the login page (Profile.Login) in the
//     body, whatever the status;
//   - anything else (a 403 challenge page of a CDN or bot protection, a 200
//     app shell, a 5xx, no answer) says nothing: ErrSiteDown.
func (s *Sender) CheckSession(ctx context.Context, creator string, creds Credentials) (valid bool, err error) {
	c, err := s.lend(creator, creds)
	if err != nil {
		return false, err
	}
	defer s.giveBack(c, true)
	u := strings.TrimSuffix(s.cfg.BaseURL, "/") + s.cfg.Profile.SessionCheck.Path
	resp, err := c.cc.ctx.Request().Get(u, playwright.APIRequestContextGetOptions{MaxRedirects: playwright.Int(0), Timeout: ms(s.cfg.Timeouts.Navigation)})
	if err != nil {
		return false, fmt.Errorf("%w: session check: %v", ErrSiteDown, err)
	}
	defer func() { _ = resp.Dispose() }()
	st := resp.Status()
	if st == 401 || (st >= 300 && st < 400) {
		return false, nil
	}
	body, err := resp.Body()
	if err != nil {
		return false, fmt.Errorf("%w: session check: body: %v", ErrSiteDown, err)
	}
	if st >= 200 && st < 300 && s.cfg.Profile.SessionCheck.proves(body) {
		return true, nil
	}
	if s.showsLogin(ctx, body) {
		return false, nil
	}
	return false, fmt.Errorf("%w: session check answered %d without proof of the session either way", ErrSiteDown, st)
}

// showsLogin reports whether an HTML body is the site's login page: it is
// rendered in a throwaway context without JavaScript and without network
// (nothing it refers to is fetched) and matched with Profile.Login.
func (s *Sender) showsLogin(ctx context.Context, body []byte) bool {
	l := s.cfg.Profile.Login
	if l.Selector == "" || len(body) == 0 || ctx.Err() != nil {
		return false
	}
	s.mu.Lock()
	sess := s.session
	s.mu.Unlock()
	if sess == nil {
		return false
	}
	bctx, err := sess.Browser.NewContext(playwright.BrowserNewContextOptions{JavaScriptEnabled: playwright.Bool(false)})
	if err != nil {
		return false
	}
	defer func() { _ = bctx.Close() }()
	if err := bctx.Route("**/*", func(r playwright.Route) { _ = r.Abort("blockedbyclient") }); err != nil {
		return false
	}
	page, err := bctx.NewPage()
	if err != nil {
		return false
	}
	if err := page.SetContent(string(body), playwright.PageSetContentOptions{Timeout: ms(s.cfg.Timeouts.Action)}); err != nil {
		return false
	}
	n, err := page.Locator(l.Selector).Count()
	return err == nil && n > 0
}

// history reads the creator's messages in the open chat, oldest first,
// once the history is ready (Profile.HistoryReady: its marker is there and
// two reads agree): each one's text key digest (Profile.Text) and, when the
// profile names it, its id (Profile.HistoryID). The texts are read as
// rendered (innerText: a <br> is a line break, as the typed newline was),
// not as the DOM's text nodes. complete says the chat shows the
// conversation from its first message (Profile.HistoryStart).
//
// A history that never gets ready is the page's failure, not this
// message's (the site's history service down shows every chat so):
// ErrSiteDown, an outage, as a chat page without its composer is.
func (s *Sender) history(page playwright.Page) (shown []Shown, complete bool, err error) {
	ready := s.cfg.Profile.HistoryReady
	if ready.Selector != "" {
		if err := page.Locator(ready.Selector).First().WaitFor(playwright.LocatorWaitForOptions{
			State: playwright.WaitForSelectorStateAttached, Timeout: ms(s.cfg.Timeouts.Navigation),
		}); err != nil {
			return nil, false, fmt.Errorf("%w: the chat's history never got ready (%s): %w", ErrSiteDown, ready.Selector, classify("wait for the chat's history", err))
		}
	}
	if shown, err = s.stableHistory(page, ready); err != nil {
		return nil, false, err
	}
	if sel := s.cfg.Profile.HistoryStart; sel != "" {
		n, err := page.Locator(sel).Count()
		if err != nil {
			return nil, false, classify("read the history's start", err)
		}
		complete = n > 0
	}
	return shown, complete, nil
}

// stableHistory reads the history until two reads agree.
func (s *Sender) stableHistory(page playwright.Page, ready HistoryReady) ([]Shown, error) {
	read := func() ([]Shown, error) {
		raw, err := page.Locator(s.cfg.Profile.History).EvaluateAll(
			`(els, attr) => els.map(e => [e.innerText, attr ? (e.getAttribute(attr) || "") : ""])`, s.cfg.Profile.HistoryID)
		if err != nil {
			return nil, classify("read history", err)
		}
		rows, _ := raw.([]any)
		shown := make([]Shown, 0, len(rows))
		for _, r := range rows {
			pair, _ := r.([]any)
			if len(pair) != 2 {
				return nil, fmt.Errorf("%w: read history: unexpected %T", ErrBrowser, r)
			}
			text, _ := pair[0].(string)
			id, _ := pair[1].(string)
			shown = append(shown, Shown{Key: s.digest(text), ID: id})
		}
		return shown, nil
	}
	shown, err := read()
	if err != nil {
		return nil, err
	}
	// Bounded: a history that keeps changing for longer than a step may
	// take is not read (a read taken mid-render could say "not sent").
	deadline := time.Now().Add(s.cfg.Timeouts.Action + ready.stable())
	for {
		time.Sleep(ready.stable())
		again, err := read()
		if err != nil {
			return nil, err
		}
		if slices.Equal(again, shown) {
			return shown, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: read history: it kept changing (%d messages, then %d)", ErrTimeout, len(shown), len(again))
		}
		shown = again
	}
}

// onLoginPage reports whether the site showed its login page instead of
// the chat (the session is gone).
func (s *Sender) onLoginPage(page playwright.Page) bool {
	l := s.cfg.Profile.Login
	if l.URLContains != "" && strings.Contains(page.URL(), l.URLContains) {
		return true
	}
	if l.Selector == "" {
		return false
	}
	n, err := page.Locator(l.Selector).Count()
	return err == nil && n > 0
}

func capture(page playwright.Page) *Artifacts {
	if page == nil || page.IsClosed() {
		return nil
	}
	a := &Artifacts{}
	// The viewport only: enough to see what went wrong, less of the
	// creator's conversation than a full page.
	a.Screenshot, _ = page.Screenshot(playwright.PageScreenshotOptions{FullPage: playwright.Bool(false), Timeout: playwright.Float(5000)})
	// Content has no timeout and waits for a navigation in flight (a
	// hanging site): given up after a while (the page is then closed as
	// unhealthy, which ends the call).
	html := make(chan string, 1)
	go func() {
		h, _ := page.Content()
		html <- h
	}()
	select {
	case a.HTML = <-html:
	case <-time.After(captureTimeout):
	}
	return a
}

// captureTimeout bounds the page HTML of a capture.
const captureTimeout = 5 * time.Second

func classify(step string, err error) error {
	if errors.Is(err, playwright.ErrTimeout) || strings.Contains(err.Error(), "Timeout") {
		return fmt.Errorf("%w: %s: %v", ErrTimeout, step, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrBrowser, step, err)
}

func retryAfter(h map[string]string) time.Duration {
	v := h["retry-after"]
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func ms(d time.Duration) *float64 {
	return playwright.Float(float64(d.Milliseconds()))
}
