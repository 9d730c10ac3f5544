// Package browserharness starts Chromium through playwright-go for tests
// that drive a browser. It is apart from test/harness so that packages whose
// tests need only Redis and the AWS emulators do not link the browser.
package browserharness

import (
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/test/harness"
)

// StartBrowser starts the Playwright driver and a headless Debian Chromium,
// closed after the test.
func StartBrowser(t harness.T) *browser.Session {
	t.Helper()
	opts := browser.Options{DriverDir: harness.DriverDir(t)}
	if err := opts.Check(); err != nil {
		t.Fatalf("browserharness: %v", err)
	}
	s, err := browser.Start(opts)
	if err != nil {
		t.Fatalf("browserharness: %v", err)
	}
	t.Logf("browserharness: chromium %s launched through playwright driver in %s", s.Browser.Version(), opts.DriverDir)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("browserharness: close browser: %v", err)
		}
	})
	return s
}
