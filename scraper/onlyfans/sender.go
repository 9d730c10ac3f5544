// Package onlyfans sends a message as a creator through a real browser:
// open the fan's chat, type, attach media, click send, and read the HTTP
// status of the site's own send request from the network.
package onlyfans

import (
	"context"
	"errors"
	"fmt"
	"os"
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

// Result of one send.
type Result struct {
	Status     int           // HTTP status of the site's send request
	RetryAfter time.Duration // from Retry-After on 429/503
}

// Artifacts are captured when a send does not succeed.
type Artifacts struct {
	Screenshot []byte
	HTML       string
	Trace      []byte // Playwright trace zip (Config.Traces)
}

// ErrTimeout marks a step that did not finish in time.
var ErrTimeout = errors.New("browser step timed out")

// ErrSessionRejected marks a session the site refused (login page, 401/403).
var ErrSessionRejected = errors.New("session rejected by the site")

// ErrBrowser marks a browser that crashed or failed.
var ErrBrowser = errors.New("browser failure")

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

// DefaultKeepContexts is how many creators' pages stay open: a kept page
// costs about 60 MiB (docs/benchmarks.md), 12 fit the task's memory.
const DefaultKeepContexts = 12

// Sender owns one browser and one context per creator.
type Sender struct {
	cfg      Config
	mu       sync.Mutex
	session  *browser.Session
	contexts map[string]*creatorContext
}

// New returns a sender; the browser starts on first use.
func New(cfg Config) *Sender {
	if cfg.Profile.Name == "" {
		cfg.Profile = DefaultProfile()
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = cfg.Profile.BaseURL
	}
	if cfg.RecycleAfter <= 0 {
		cfg.RecycleAfter = 50
	}
	if cfg.KeepContexts <= 0 {
		cfg.KeepContexts = DefaultKeepContexts
	}
	return &Sender{cfg: cfg, contexts: map[string]*creatorContext{}}
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
		return fmt.Errorf("%w: %v", ErrBrowser, err)
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
	cc := &creatorContext{ctx: bctx, version: creds.Version}
	if s.cfg.Traces {
		// Snapshots and network, no screenshots: the trace of a failed
		// send shows each step's DOM at a small cost per send.
		cc.tracing = bctx.Tracing().Start(playwright.TracingStartOptions{Snapshots: playwright.Bool(true), Screenshots: playwright.Bool(false)}) == nil
	}
	return cc, nil
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
		return nil, classify("open chat", err)
	}
	if s.onLoginPage(page) {
		return &Result{Status: 401}, nil
	}
	if resp != nil && resp.Status() >= 400 {
		return &Result{Status: resp.Status(), RetryAfter: retryAfter(resp.Headers())}, nil
	}
	return nil, nil
}

// Send sends msg as creator. beforeClick (may be nil) runs after the page
// is ready and right before the send click, with the number of messages of
// the same text the chat shows to that fan at that moment: an error from it
// stops the send unclicked and is returned as is (the scraper's rate gate
// and attempt mark use it, so the time it admits is the time the site sees).
// Any other non-nil error is a timeout or browser failure; otherwise Result
// holds the site's answer. Artifacts are returned whenever the send did not
// end with a 2xx.
func (s *Sender) Send(ctx context.Context, creator string, creds Credentials, msg message.Message, beforeClick func(identical int) error) (res Result, art *Artifacts, err error) {
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
		// A timeout or browser error may leave the page stuck mid-action;
		// a send stopped by beforeClick only left typed text, which the
		// next navigation drops.
		s.giveBack(c, err == nil || stoppedBeforeClick)
	}()
	page := c.page
	early, err := s.openChat(page, msg.RecipientID)
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
		return page.Locator(s.cfg.Profile.Input).Fill(msg.Content, playwright.LocatorFillOptions{Timeout: timeout})
	}); err != nil {
		return Result{}, capture(page), err
	}
	if beforeClick != nil {
		identical, err := s.identical(page, msg.Content)
		if err != nil {
			return Result{}, capture(page), err
		}
		if err := beforeClick(identical); err != nil {
			stoppedBeforeClick = true
			return Result{}, nil, err
		}
	}
	var resp playwright.Response
	err = act("send", func() error {
		var err error
		resp, err = page.ExpectResponse(s.cfg.Profile.SendRequest.URL, func() error {
			return page.Locator(s.cfg.Profile.Send).Click(playwright.LocatorClickOptions{Timeout: timeout})
		}, playwright.PageExpectResponseOptions{Timeout: ms(s.cfg.Timeouts.Response)})
		return err
	})
	if err != nil {
		return Result{}, capture(page), err
	}
	if m := resp.Request().Method(); !strings.EqualFold(m, s.cfg.Profile.SendRequest.Method) {
		// The clicked request is not the one the profile reads: unknown
		// outcome, kept as an attempt the next try counts.
		return Result{}, capture(page), fmt.Errorf("%w: send answered by a %s to %s, the profile expects %s", ErrBrowser, m, resp.URL(), s.cfg.Profile.SendRequest.Method)
	}
	res = Result{Status: resp.Status(), RetryAfter: retryAfter(resp.Headers())}
	if res.Status >= 300 {
		return res, capture(page), nil
	}
	return res, nil, nil
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

// CountIdentical returns how many messages with msg's text the fan's chat
// shows: compared with the count Send saw right before an interrupted
// click, it tells whether that click sent this message. Identical texts
// ("Thank you babe") are distinct messages, so presence alone proves
// nothing.
func (s *Sender) CountIdentical(ctx context.Context, creator string, creds Credentials, msg message.Message) (n int, err error) {
	c, err := s.lend(creator, creds)
	if err != nil {
		return 0, err
	}
	defer func() { s.giveBack(c, err == nil) }()
	early, err := s.openChat(c.page, msg.RecipientID)
	if err != nil {
		return 0, err
	}
	if early != nil && (early.Status == 401 || early.Status == 403) {
		return 0, fmt.Errorf("%w: chat page answered %d", ErrSessionRejected, early.Status)
	}
	if early != nil {
		return 0, fmt.Errorf("chat page answered %d", early.Status)
	}
	return s.identical(c.page, msg.Content)
}

// identical counts the creator's messages in the open chat whose text is
// text (trimmed).
func (s *Sender) identical(page playwright.Page, text string) (int, error) {
	texts, err := page.Locator(s.cfg.Profile.History).AllTextContents()
	if err != nil {
		return 0, classify("read history", err)
	}
	n := 0
	for _, t := range texts {
		if strings.TrimSpace(t) == strings.TrimSpace(text) {
			n++
		}
	}
	return n, nil
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
	a.HTML, _ = page.Content()
	return a
}

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
	if d <= 0 {
		d = 10 * time.Second
	}
	return playwright.Float(float64(d.Milliseconds()))
}
