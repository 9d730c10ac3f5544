// Package onlyfans sends a message as a creator through a real browser:
// open the fan's chat, type, attach media, click send, and read the HTTP
// status of the site's own send request from the network.
package onlyfans

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/internal/browser"
)

// Credentials of one creator's session.
type Credentials struct {
	SessionCookie string `json:"sessionCookie"`
	// Version identifies this session (the secret's version): a creator
	// paused for a rejected session resumes when it changes.
	Version string `json:"-"`
}

// Timeouts bound every step.
type Timeouts struct {
	Navigation time.Duration
	Action     time.Duration
	Response   time.Duration
}

// LeaveWithin is how long after a send's mark is made (right before its
// click) the click's send request may still leave the browser: the click
// (Action), then the wait for its answer (Response + answerGrace), after
// which the click's window closes and no request of it leaves (Mark.LeaveBy).
func (t Timeouts) LeaveWithin() time.Duration { return t.Action + t.Response + answerGrace }

// Config of the sender.
type Config struct {
	// BaseURL overrides the profile's (local runs: the fake site).
	BaseURL  string
	Browser  browser.Options
	Profile  Profile
	Timeouts Timeouts
	// RecycleAfter closes a creator's browser context after that many sends
	// (memory of long-lived pages grows).
	RecycleAfter int
	// KeepContexts bounds the creators whose context and chat page stay
	// open between sends (the least recently used idle one is closed
	// beyond it). A kept page is navigated to the next chat instead of
	// starting a renderer process per send: most of a send's CPU.
	KeepContexts int
	// Traces records a Playwright trace of every send and returns it as
	// Artifacts.Trace when the send does not succeed.
	Traces bool
}

// Outcome of a send at the site.
type Outcome int

const (
	// NotSent: no send request left the page, or the site refused it (4xx).
	NotSent Outcome = iota
	// Sent: the site accepted it (2xx).
	Sent
	// Unknown: clicked, and the site may have taken it (5xx, 3xx, no
	// answer, a dropped connection): only a read-back of the chat settles it.
	Unknown
)

// Result of one send.
type Result struct {
	Outcome    Outcome
	Status     int           // HTTP status of the site's send request
	RetryAfter time.Duration // from Retry-After on 429/503
	// Requests is how many send requests the page issued for the click;
	// only the first reached the site.
	Requests int
	// LeftBy is the latest moment (Unix ms) a send request of the click
	// may have left the browser, known once its window closed: when the
	// one let through left, else when the window closed (none leaves
	// after it); at most the mark's LeaveBy. 0: no click was tried.
	LeftBy int64
	// discardContext: the route of the click's request was ended by an
	// abort (Sender.discard).
	discardContext bool
	// LoginPage: the site showed its login page (Profile.Login) instead of
	// the chat: proof on its own that the session is rejected.
	LoginPage bool
	// ChatPage: Status is the fan's chat page's answer (401, 429, a
	// session-check status); no send request was made.
	ChatPage bool
	// Foreign: the send's answer is not of the send API's media type
	// (SendRequest.AnswerType): a front (CDN, WAF, bot wall) answered in
	// its place, about every send rather than this one.
	Foreign bool
}

// Artifacts are captured when a send does not succeed.
type Artifacts struct {
	Screenshot []byte
	HTML       string
	Trace      []byte // Playwright trace zip (Config.Traces)
}

// ErrTimeout marks a step that did not finish in time.
var ErrTimeout = errors.New("browser step timed out")

// ErrSiteDown marks a site that is unreachable (refused, DNS, TLS, reset),
// hanging or failing (5xx pages): an outage, never the message's fault.
var ErrSiteDown = errors.New("site unavailable")

// ErrBrowser marks a browser that crashed or failed.
var ErrBrowser = errors.New("browser failure")

// ErrBrowserDown marks a browser that cannot be (re)started (out of
// memory, /tmp full, a broken image): the task's outage, never a message's
// fault. It also matches ErrBrowser.
var ErrBrowserDown = errors.New("browser cannot start")

// Sender owns one browser and one context per creator.
type Sender struct {
	cfg      Config
	mu       sync.Mutex
	session  *browser.Session
	contexts map[string]*creatorContext
	// armed is the click window of each page sending now.
	armed  map[playwright.Page]*attempt
	strays int
}

// Validate reports a configuration the sender cannot run with. Every
// field comes from the scraper's settings (scraper/settings), where the
// defaults are: nothing is filled in here.
func (c Config) Validate() error {
	var errs []error
	if c.Profile.Name == "" {
		errs = append(errs, errors.New("onlyfans: a site profile is required"))
	}
	if c.RecycleAfter < 1 || c.KeepContexts < 0 {
		errs = append(errs, fmt.Errorf("onlyfans: recycle after must be ≥ 1 and kept contexts ≥ 0, got %d and %d", c.RecycleAfter, c.KeepContexts))
	}
	if t := c.Timeouts; t.Navigation <= 0 || t.Action <= 0 || t.Response <= 0 {
		errs = append(errs, fmt.Errorf("onlyfans: navigation, action and response timeouts must be positive, got %s, %s, %s", t.Navigation, t.Action, t.Response))
	}
	return errors.Join(errs...)
}

// New returns a sender; the browser starts on first use. BaseURL, when
// empty, is the profile's.
func New(cfg Config) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = cfg.Profile.BaseURL
	}
	return &Sender{cfg: cfg, contexts: map[string]*creatorContext{}, armed: map[playwright.Page]*attempt{}}, nil
}

// Profile is the site profile the sender uses.
func (s *Sender) Profile() Profile { return s.cfg.Profile }

// Sandboxed says whether the running browser's renderers are sandboxed,
// and if not why (browser.Options.Sandbox).
func (s *Sender) Sandboxed() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil {
		return false, errors.New("browser not started")
	}
	return s.session.Sandboxed, s.session.SandboxError
}

// Start launches the browser now (to fail fast at startup).
func (s *Sender) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ensureBrowser()
}

func (s *Sender) ensureBrowser() error {
	if s.session != nil && s.session.Browser.IsConnected() {
		return nil
	}
	if s.session != nil { // crashed: start over
		_ = s.session.Close()
		s.session, s.contexts = nil, map[string]*creatorContext{}
	}
	sess, err := browser.Start(s.cfg.Browser)
	if err != nil {
		return fmt.Errorf("%w: %w: %v", ErrBrowserDown, ErrBrowser, err)
	}
	s.session = sess
	return nil
}

// Close closes every context and the browser.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.session == nil {
		return nil
	}
	err := s.session.Close()
	s.session, s.contexts = nil, map[string]*creatorContext{}
	return err
}

func classify(step string, err error) error {
	if errors.Is(err, playwright.ErrTimeout) || strings.Contains(err.Error(), "Timeout") {
		return fmt.Errorf("%w: %s: %v", ErrTimeout, step, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrBrowser, step, err)
}

func retryAfter(h map[string]string) time.Duration {
	v := h["retry-after"]
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := time.Parse(time.RFC1123, v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func ms(d time.Duration) *float64 {
	return playwright.Float(float64(d.Milliseconds()))
}
