package onlyfans

import (
	"context"
	"fmt"
	"strings"

	"github.com/playwright-community/playwright-go"
)

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
