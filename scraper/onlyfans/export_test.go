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
