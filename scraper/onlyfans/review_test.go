package onlyfans_test

import (
	"strings"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/harness"
)

// Review of issue 22: attacks on the browser's reach.

func TestReviewAPageCannotReachTheCredentialEndpointThroughADNSName(t *testing.T) {
	// GIVEN a creator's page in a browser whose every request goes to a
	// proxy that is not there (nothing leaves 127.0.0.1): a request the
	// browser does not block meets the absent proxy, a blocked one is
	// ERR_BLOCKED_BY_CLIENT
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
	// WHEN it navigates to the ECS credentials endpoint by a name that
	// resolves to it (public wildcard DNS; any domain a page's author
	// owns does the same, and DNS rebinding moves a name there after the
	// page loaded). Without the proxy, Chromium resolves the name and
	// connects to 169.254.170.2: the URL filter never sees an address.
	for _, u := range []string{"http://169.254.170.2.nip.io/v2/credentials/uuid", "http://169-254-170-2.nip.io/v2/metadata"} {
		_, err := page.Goto(u)
		// THEN the browser refuses it itself
		if err == nil || !strings.Contains(err.Error(), "ERR_BLOCKED_BY_CLIENT") {
			t.Errorf("navigate %s: not blocked by the browser: %v", u, err)
		}
	}
}
