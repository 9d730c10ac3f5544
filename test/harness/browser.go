package harness

import (
	"path/filepath"

	"github.com/huntaze/message-pipeline/internal/browser"
)

// DriverDir is where `make deps` unpacks the Playwright driver (npm
// playwright-core@1.57.0 as package/, plus a node symlink).
func DriverDir(t T) string {
	return filepath.Join(RepoRoot(t), ".cache", "playwright-driver")
}

// StartBrowser starts the Playwright driver and a headless Debian Chromium,
// closed after the test.
func StartBrowser(t T) *browser.Session {
	t.Helper()
	opts := browser.Options{DriverDir: DriverDir(t)}
	if err := opts.Check(); err != nil {
		t.Fatalf("harness: %v", err)
	}
	s, err := browser.Start(opts)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Logf("harness: chromium %s launched through playwright driver in %s", s.Browser.Version(), opts.DriverDir)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("harness: close browser: %v", err)
		}
	})
	return s
}
