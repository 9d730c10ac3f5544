package onlyfans

import (
	"fmt"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/internal/browser"
)

type creatorContext struct {
	ctx     playwright.BrowserContext
	version string // of the session its cookie holds
	sends   int
	// page is the kept chat page, busy while a send or a count uses it.
	page     playwright.Page
	busy     bool
	lastUsed time.Time
	tracing  bool
	// appOpen: page holds the site's app with a chat its last opening
	// confirmed (Profile.InApp): the next opening may switch inside it.
	appOpen bool
	// crashed: a renderer of one of its pages died (giveBack discards it).
	crashed bool
}

// chat is a page of a creator's context lent to one send or count.
type chat struct {
	page    playwright.Page
	cc      *creatorContext
	kept    bool // the context's kept page (else a spare, closed after use)
	creator string
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
	if cc != nil && !cc.busy && (cc.sends >= s.cfg.RecycleAfter || cc.version != creds.Version || cc.crashed) {
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
		page, err := s.newPage(cc)
		if err != nil {
			return nil, fmt.Errorf("%w: new page: %v", ErrBrowser, err)
		}
		return &chat{page: page, cc: cc, creator: creator}, nil
	}
	if cc.page == nil || cc.page.IsClosed() {
		page, err := s.newPage(cc)
		if err != nil {
			return nil, fmt.Errorf("%w: new page: %v", ErrBrowser, err)
		}
		cc.page, cc.appOpen = page, false
	}
	cc.busy = true
	return &chat{page: cc.page, cc: cc, kept: true, creator: creator}, nil
}

// newPage opens a page of cc that marks cc crashed when its renderer
// dies (giveBack).
func (s *Sender) newPage(cc *creatorContext) (playwright.Page, error) {
	page, err := cc.ctx.NewPage()
	if err != nil {
		return nil, err
	}
	page.OnCrash(func(playwright.Page) {
		s.mu.Lock()
		cc.crashed = true
		s.mu.Unlock()
	})
	return page, nil
}

// giveBack ends a loan: a kept page that served well stays open for the
// creator's next send; a spare page, or one that failed (it may be stuck
// mid-action), is closed. A context one of whose renderers crashed is
// discarded whole: a crashed page ignores Route.Fulfill and Abort alike,
// so a send request it had paused stays paused, and closing the page let
// Chromium send it itself (review 22 AG A: an answered send, the crashed
// page kept and closed by the next loan: two copies).
func (s *Sender) giveBack(c *chat, healthy bool) {
	s.mu.Lock()
	crashed := c.cc.crashed
	s.mu.Unlock()
	if crashed {
		s.discard(c)
		return
	}
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
		c.cc.page, c.cc.appOpen = nil, false
	}
}

// discard ends a loan whose click's send request had its route aborted
// while paused: on a crashed renderer an abort does nothing, and closing
// the page then let Chromium send the paused request itself, past the
// interceptor, the gate and the mark (review 22 AF A: one click, two
// copies). The creator's whole context is closed instead, which ends the
// request with it (a spare page's loan of the same context fails with
// it); the next send opens a new one.
func (s *Sender) discard(c *chat) {
	s.mu.Lock()
	if s.contexts[c.creator] == c.cc {
		delete(s.contexts, c.creator)
	}
	s.mu.Unlock()
	_ = c.cc.ctx.Close()
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
