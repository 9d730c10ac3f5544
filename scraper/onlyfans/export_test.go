package onlyfans

import "github.com/playwright-community/playwright-go"

// CookiesForTest returns the cookies of the creator's browser context.
func (s *Sender) CookiesForTest(creator string) ([]playwright.Cookie, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.contexts[creator].ctx.Cookies()
}

// KillBrowserForTest closes the browser behind the sender's back, as a crash would.
func (s *Sender) KillBrowserForTest() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.session.Browser.Close()
}

// SessionCookieForTest is the cookie the sender sets for creds.
func (s *Sender) SessionCookieForTest(creds Credentials) playwright.OptionalCookie {
	return s.sessionCookie(creds)
}

// KeptPageForTest returns the creator's kept chat page (nil: none).
func (s *Sender) KeptPageForTest(creator string) playwright.Page {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cc := s.contexts[creator]; cc != nil {
		return cc.page
	}
	return nil
}

// ContextsForTest is how many creator contexts are open.
func (s *Sender) ContextsForTest() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.contexts)
}

// PageForTest lends the creator's page (opening its context) and keeps it
// lent.
func (s *Sender) PageForTest(creator string, creds Credentials) (playwright.Page, error) {
	c, err := s.lend(creator, creds)
	if err != nil {
		return nil, err
	}
	return c.page, nil
}
