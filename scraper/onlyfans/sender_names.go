package onlyfans

import (
	"context"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/internal/browser"
)

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
