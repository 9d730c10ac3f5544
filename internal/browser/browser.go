// Package browser starts Playwright (through playwright-go and an npm-installed
// driver) with the Debian Chromium, the way the scraper and the tests both do.
// Nothing is ever downloaded: the driver folder and Chromium must already exist.
package browser

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/playwright-community/playwright-go"
)

// DefaultChromiumPath is Debian's Chromium binary. The /usr/bin/chromium
// wrapper script prints a shell error on every start, so we launch the binary.
const DefaultChromiumPath = "/usr/lib/chromium/chromium"

// ChromiumArgs are the flags Chromium needs in a container or CI: no GPU,
// /tmp instead of a small /dev/shm (its size is not settable on Fargate),
// and none of the background traffic a desktop browser makes. The sandbox
// is Options.Sandbox's decision (NoSandboxArg).
var ChromiumArgs = []string{
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
	// Sandbox is the renderer sandbox: "auto" (the default: tried first,
	// without it when this platform cannot give it, logged by the
	// caller from Session.Sandboxed), "on" (required), "off".
	Sandbox string
}

// LinkLocalURL matches URLs whose host is link-local (169.254.0.0/16: the
// ECS credentials endpoint 169.254.170.2, the instance metadata
// 169.254.169.254; fd00:ec2::254; IPv4-mapped IPv6 forms), as Chromium
// writes them (it turns decimal, octal and hex hosts into dotted ones).
var LinkLocalURL = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://([^/@]*@)?(169\.254\.\d{1,3}\.\d{1,3}|\[fd00:ec2::254\]|\[::ffff:(a9fe:[0-9a-f]{1,4}|169\.254\.\d{1,3}\.\d{1,3})\])(:\d+)?([/?#]|$)`)

// embeddedLinkLocal matches host names that carry a link-local address
// in their labels, as wildcard DNS services answer them (nip.io, sslip.io
// and their kind: 169.254.170.2.nip.io, 169-254-170-2.sslip.io,
// a9feaa02.nip.io): blocked without asking DNS.
var embeddedLinkLocal = regexp.MustCompile(`(?i)(^|[.-])(169[.-]254[.-]\d{1,3}[.-]\d{1,3}|a9fe[0-9a-f]{4})([.-]|$)`)

// metadataNames are the names the platforms give their metadata endpoints.
var metadataNames = map[string]bool{"instance-data": true, "instance-data.ec2.internal": true, "metadata": true, "metadata.google.internal": true}

// LinkLocalName reports whether host (a name, no port) is a credential
// endpoint by its name alone: a known metadata name or a name embedding a
// link-local address.
func LinkLocalName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return metadataNames[host] || embeddedLinkLocal.MatchString(host)
}

// LinkLocalIP reports whether ip is link-local (169.254.0.0/16, fe80::/10,
// their IPv4-mapped forms) or the ECS IPv6 endpoint fd00:ec2::254.
func LinkLocalIP(ip net.IP) bool {
	return ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.Equal(net.ParseIP("fd00:ec2::254"))
}

// ResolvesToLinkLocal looks host up (bounded by timeout) and reports
// whether any of its addresses is link-local. A lookup that fails says
// false: the browser's own lookup then fails too. What a name resolves to
// when the browser looks it up a moment later may differ (DNS rebinding):
// docs/scraper.md says what is left.
func ResolvesToLinkLocal(ctx context.Context, r *net.Resolver, host string, timeout time.Duration) bool {
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		return LinkLocalIP(ip)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if LinkLocalIP(a.IP) {
			return true
		}
	}
	return false
}

// NoSandboxArg turns Chromium's renderer sandbox off.
const NoSandboxArg = "--no-sandbox"

// browserEnv is all of the scraper's environment Chromium gets: no AWS
// variable (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI names the task's
// credentials), no session, no setting: a renderer exploit finds nothing
// there.
var browserEnv = []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_ALL", "LC_CTYPE", "FONTCONFIG_FILE", "FONTCONFIG_PATH", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "DISPLAY"}

// BrowserEnv returns the environment Chromium starts with, from environ
// (KEY=VALUE entries).
func BrowserEnv(environ []string) map[string]string {
	keep := map[string]bool{}
	for _, k := range browserEnv {
		keep[k] = true
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && keep[k] {
			env[k] = v
		}
	}
	return env
}

// Session is a running driver with one browser.
type Session struct {
	Playwright *playwright.Playwright
	Browser    playwright.Browser
	// Sandboxed says whether the renderers run in Chromium's sandbox.
	Sandboxed bool
	// SandboxError is why the sandbox could not be had ("auto").
	SandboxError error
}

// ErrMissing wraps errors about a driver or browser that is not installed.
var ErrMissing = errors.New("not installed")

// Validate names a bad Sandbox.
func (o Options) Validate() error {
	switch o.Sandbox {
	case "", "auto", "on", "off":
		return nil
	}
	return fmt.Errorf(`CHROMIUM_SANDBOX must be auto, on or off, got %q`, o.Sandbox)
}

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
	launch := func(sandbox bool) (playwright.Browser, error) {
		args := append(append([]string(nil), ChromiumArgs...), o.ExtraArgs...)
		if !sandbox {
			args = append(args, NoSandboxArg)
		}
		return pw.Chromium.Launch(playwright.BrowserTypeLaunchOptions{
			ExecutablePath: playwright.String(o.chromium()),
			Args:           args,
			Headless:       playwright.Bool(!o.Headful),
			Env:            BrowserEnv(os.Environ()),
			// Playwright adds --no-sandbox itself unless told the sandbox is wanted.
			ChromiumSandbox: playwright.Bool(sandbox),
		})
	}
	sess := &Session{Playwright: pw}
	var sandboxErr error
	if o.Sandbox != "off" {
		sess.Browser, sandboxErr = launch(true)
		sess.Sandboxed = sandboxErr == nil
	}
	if o.Sandbox == "on" && sandboxErr != nil {
		_ = pw.Stop()
		return nil, fmt.Errorf("launch chromium %s with its sandbox (CHROMIUM_SANDBOX=on): %w", o.chromium(), sandboxErr)
	}
	if !sess.Sandboxed {
		sess.SandboxError = sandboxErr
		if sess.Browser, err = launch(false); err != nil {
			_ = pw.Stop()
			return nil, fmt.Errorf("launch chromium %s: %w", o.chromium(), err)
		}
	}
	return sess, nil
}

// Close closes the browser and stops the driver.
func (s *Session) Close() error {
	return errors.Join(s.Browser.Close(), s.Playwright.Stop())
}
