// Package browser starts Playwright (through playwright-go and an npm-installed
// driver) with the Debian Chromium, the way the scraper and the tests both do.
// Nothing is ever downloaded: the driver folder and Chromium must already exist.
package browser

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/playwright-community/playwright-go"
)

// DefaultChromiumPath is Debian's Chromium binary. The /usr/bin/chromium
// wrapper script prints a shell error on every start, so we launch the binary.
const DefaultChromiumPath = "/usr/lib/chromium/chromium"

// ChromiumArgs are the flags Chromium needs in a container or CI: no sandbox
// (no user namespaces there), no GPU, /tmp instead of a small /dev/shm (its
// size is not settable on Fargate), and none of the background traffic a
// desktop browser makes.
var ChromiumArgs = []string{
	"--no-sandbox",
	"--disable-gpu",
	"--disable-dev-shm-usage",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-sync",
	"--no-first-run",
}

// Options says where the driver and Chromium are.
type Options struct {
	// DriverDir holds package/ (playwright-core 1.57.0) and node.
	DriverDir string
	// ChromiumPath defaults to DefaultChromiumPath.
	ChromiumPath string
	// Headless is the default; set Headful for debugging.
	Headful bool
	// ExtraArgs are added to ChromiumArgs.
	ExtraArgs []string
}

// Session is a running driver with one browser.
type Session struct {
	Playwright *playwright.Playwright
	Browser    playwright.Browser
}

// ErrMissing wraps errors about a driver or browser that is not installed.
var ErrMissing = errors.New("not installed")

// Check reports a missing driver or Chromium before anything starts, with a
// message saying how to install it.
func (o Options) Check() error {
	if _, err := os.Stat(filepath.Join(o.DriverDir, "package", "cli.js")); err != nil {
		return fmt.Errorf("playwright driver %w in %s (run `make deps`, which unpacks npm playwright-core@1.57.0 there): %v", ErrMissing, o.DriverDir, err)
	}
	if _, err := os.Stat(filepath.Join(o.DriverDir, "node")); err != nil {
		return fmt.Errorf("node for the playwright driver %w in %s (run `make deps`): %v", ErrMissing, o.DriverDir, err)
	}
	if _, err := os.Stat(o.chromium()); err != nil {
		return fmt.Errorf("chromium %w at %s (install it with `apt-get install -y chromium`): %v", ErrMissing, o.chromium(), err)
	}
	return nil
}

func (o Options) chromium() string {
	if o.ChromiumPath != "" {
		return o.ChromiumPath
	}
	return DefaultChromiumPath
}

// Start runs the driver and launches Chromium.
func Start(o Options) (*Session, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	pw, err := playwright.Run(&playwright.RunOptions{
		DriverDirectory:     o.DriverDir,
		SkipInstallBrowsers: true,
		Verbose:             false,
	})
	if err != nil {
		return nil, fmt.Errorf("start playwright driver: %w", err)
	}
	b, err := pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
		ExecutablePath: playwright.String(o.chromium()),
		Args:           append(append([]string(nil), ChromiumArgs...), o.ExtraArgs...),
		Headless:       playwright.Bool(!o.Headful),
	})
	if err != nil {
		_ = pw.Stop()
		return nil, fmt.Errorf("launch chromium %s: %w", o.chromium(), err)
	}
	return &Session{Playwright: pw, Browser: b}, nil
}

// Close closes the browser and stops the driver.
func (s *Session) Close() error {
	return errors.Join(s.Browser.Close(), s.Playwright.Stop())
}
