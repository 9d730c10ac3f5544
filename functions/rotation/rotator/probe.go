package rotator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// SessionProbeSettings says how the session health check asks the site
// whether a session still works: a plain HTTP GET of URL with the session
// cookie, redirects not followed. Like the scraper's site profile
// (scraper/onlyfans/profiles/onlyfans.json: base URL, cookie name, login
// URL part) these are site knowledge, kept here as their own settings so
// the check does not depend on the scraper; change them together.
type SessionProbeSettings struct {
	// URL is a page only a logged-in session sees; empty: no probe (the
	// check then reads each secret's shape and age only).
	URL string `env:"SESSION_CHECK_URL"`
	// CookieName is the session cookie's name.
	CookieName string `env:"SESSION_CHECK_COOKIE"`
	// LoginURLPart marks the login page: a redirect to a URL containing it
	// means the site refused the session.
	LoginURLPart string `env:"SESSION_CHECK_LOGIN_URL_PART"`
	// Timeout bounds one probe.
	Timeout time.Duration `env:"SESSION_CHECK_TIMEOUT"`
}

// DefaultSessionProbe is what the stack gives the health check: a page of
// OnlyFans' web app only a logged-in session sees, its session cookie and
// its login page, as the scraper's built-in profile knows them (unverified
// against the live site like the profile's selectors: check with
// `make e2e-real`).
var DefaultSessionProbe = SessionProbeSettings{URL: "https://onlyfans.com/my/chats", CookieName: "sess", LoginURLPart: "/login", Timeout: 10 * time.Second}

// The outcomes of one probe.
type probeResult int

const (
	probeAccepted probeResult = iota
	// probeRefused: a redirect to the login page, or 401/403.
	probeRefused
	// probeUnknown: the site could not say (unreachable, timeout, 5xx, 429,
	// any other answer): not counted as broken, reported apart.
	probeUnknown
)

var errNoProbe = errors.New("no session probe configured")

// probe asks the site with cookie once. The reason never holds the cookie.
func (p SessionProbeSettings) probe(ctx context.Context, client *http.Client, cookie string) (probeResult, string) {
	if p.URL == "" {
		return probeUnknown, errNoProbe.Error()
	}
	if p.Timeout <= 0 { // Load refuses it: SESSION_CHECK_TIMEOUT's default is DefaultSessionProbe's
		return probeUnknown, "SESSION_CHECK_TIMEOUT must be positive"
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return probeUnknown, "session check URL: " + err.Error()
	}
	req.AddCookie(&http.Cookie{Name: p.CookieName, Value: cookie})
	noRedirect := *client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the log line already
		}
		return probeUnknown, "the site did not answer: " + err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return probeRefused, fmt.Sprintf("the site refused the session (HTTP %d)", code)
	case code >= 300 && code < 400:
		loc := resp.Header.Get("Location")
		if p.LoginURLPart != "" && strings.Contains(loc, p.LoginURLPart) {
			return probeRefused, fmt.Sprintf("the site sends the session to its login page (HTTP %d to %s)", code, loc)
		}
		return probeUnknown, fmt.Sprintf("the site redirected elsewhere (HTTP %d)", code)
	case code >= 200 && code < 300:
		return probeAccepted, ""
	default:
		return probeUnknown, fmt.Sprintf("the site answered HTTP %d", code)
	}
}
