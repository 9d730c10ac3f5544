package onlyfans

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
)

// Profile is everything site-specific the sender uses: where a fan's chat
// is, how to type and send, which request's HTTP status says whether the
// site took a message, which cookie carries the session, and how the login
// page looks. It is configuration (a built-in profile named by
// SITE_PROFILE, or a file: SITE_PROFILE_FILE), so a change of the site's
// web app is a profile change (a file needs no release), not a change of
// code.
type Profile struct {
	Name    string `json:"name"`
	BaseURL string `json:"baseUrl"`
	// ChatPath is the path of a fan's chat; {fan} is the recipient id.
	ChatPath string `json:"chatPath"`
	Input    string `json:"input"`
	Send     string `json:"send"`
	// History matches the creator's own messages in the open chat (their
	// text is compared to count identical messages).
	History string `json:"history"`
	// HistoryReady says when the open chat's history is complete enough to
	// count: a single-page app renders it after the page loaded.
	HistoryReady HistoryReady `json:"historyReady"`
	// HistoryID is the attribute of each History element that holds the
	// site's own id of that message (the same message keeps it in every
	// view of the chat). A read-back then finds the message shown last at
	// the click by its id; without one (""), by the texts shown last (a
	// run of identical texts can leave that ambiguous: Unknown, never
	// "not sent"). docs/scraper.md.
	HistoryID string `json:"historyId,omitempty"`
	// HistoryStart matches an element the open chat shows only when it
	// shows the conversation from its first message (a "beginning of the
	// conversation" marker). A read-back of a chat showing it knows that
	// nothing scrolled out: without ids, the count then tells what a page
	// that may show only its latest messages cannot. "" (or a marker not
	// shown): the chat may show only its latest messages (the safe
	// reading). docs/scraper.md.
	HistoryStart string      `json:"historyStart,omitempty"`
	SendRequest  SendRequest `json:"sendRequest"`
	// SessionCookie is set HttpOnly and Secure, with this SameSite.
	SessionCookie Cookie `json:"sessionCookie"`
	Login         Login  `json:"login"`
	// SessionCheck tells a rejected session from a refusal about one fan.
	SessionCheck SessionCheck `json:"sessionCheck"`
	// Text is how the site stores a typed text.
	Text TextRules `json:"text"`
	// ProbeChat is the chat opened to tell one fan's broken chat from the
	// site's outage (docs/scraper.md).
	ProbeChat ProbeChat `json:"probeChat,omitempty"`
	// Block lists URL globs the browser never fetches for this site
	// (images, fonts, media: a text send needs none of them).
	Block []string `json:"block,omitempty"`
	// GatewayStatuses are the 5xx answers a gateway or load balancer in
	// front of the site gives when its origin did not answer it (bad
	// gateway, unavailable, gateway timeout); omitted: 502, 503, 504 and
	// a CDN's 520-527 (DefaultGatewayStatuses). A chat page answered one
	// of them is the site's outage, never one fan's broken chat
	// (docs/scraper.md). A send answered any 5xx, listed or not, is held
	// to the late-commit horizon like a send with no answer (review 22 F).
	GatewayStatuses []int `json:"gatewayStatuses,omitempty"`
	// InApp (a single-page app's profile; nil: a document per chat) lets
	// a creator's kept page switch chats inside the app instead of loading
	// a document per send (docs/scraper.md).
	InApp *InApp `json:"inApp,omitempty"`
	// ChatIdentity is the element and attribute naming the open chat's
	// fan on a chat document (an in-app profile's InApp.Identity serves
	// both). With it, a chat page is typed into, counted or read back
	// only once it names the message's fan; a page naming another fan (a
	// router or a cache serving the wrong chat at this fan's address) is
	// the site's outage, never read as this fan's chat (review 22 X: a
	// misrouted read-back judged fan-9's chat and sent fan-1's message
	// twice; a misrouted click left a mark of fan-9's chat that
	// dead-lettered fan-1's). nil: a document is not checked.
	ChatIdentity *ChatIdentity `json:"chatIdentity,omitempty"`
}

// fanIdentity is the element naming the open chat's fan on every chat
// page: InApp.Identity for an in-app profile, else ChatIdentity (nil: none).
func (p Profile) fanIdentity() *ChatIdentity {
	if p.InApp != nil {
		return &p.InApp.Identity
	}
	return p.ChatIdentity
}

// InApp is how a single-page app opens a chat without a document load and
// how its page confirms which fan's chat it shows. The sender switches a
// kept page that holds the app (loaded and confirmed before) with
// Navigate, and types only once the page names this fan (Identity) with
// the history ready (HistoryReady.Selector); on any doubt (not confirmed
// within the navigation timeout, another fan named, Failed or the login
// page shown, a script error) it loads the chat's URL as a document
// instead, and confirms the fan there too.
type InApp struct {
	// Navigate is how the app is asked to open a chat: "popstate"
	// (history.pushState to the chat's path, then the popstate event an
	// app's router follows).
	Navigate string `json:"navigate"`
	// Identity is the element and attribute naming the open chat's fan,
	// set by the app only after that fan's history rendered. The sender
	// removes the attribute before it switches: only a render that follows
	// the switch names a fan again (a stale pane never confirms).
	Identity ChatIdentity `json:"identity"`
	// Failed matches what the app shows when opening a chat failed (an
	// error state): the sender falls back at once instead of waiting.
	Failed string `json:"failed,omitempty"`
}

// ChatIdentity names the open chat's fan: the Attribute of the element
// matching Selector.
type ChatIdentity struct {
	Selector  string `json:"selector"`
	Attribute string `json:"attribute"`
}

// validate names what is missing or malformed.
func (a *InApp) validate() error {
	if a == nil {
		return nil
	}
	var errs []error
	if a.Navigate != "popstate" {
		errs = append(errs, fmt.Errorf("inApp.navigate must be popstate, got %q", a.Navigate))
	}
	errs = append(errs, a.Identity.validate("inApp.identity"))
	return errors.Join(errs...)
}

// validate names what is missing or malformed; field is where it is set.
func (c ChatIdentity) validate(field string) error {
	var errs []error
	if strings.TrimSpace(c.Selector) == "" {
		errs = append(errs, fmt.Errorf("%s.selector is required (the element naming the open chat's fan)", field))
	}
	if !attributeName.MatchString(c.Attribute) {
		errs = append(errs, fmt.Errorf("%s.attribute must be an attribute name, got %q", field, c.Attribute))
	}
	return errors.Join(errs...)
}

// ProbeChat: when one fan's chat cannot be used (its page answers 5xx,
// shows no composer or no history, or its send button is disabled before
// anything is typed), the sender opens the chat of Fan (a recipient every
// creator's session can open) the same way. If that chat is usable the
// fault is the first fan's alone (counted as the message's failure); if
// not, or without a Fan, the site cannot send: an outage. SendEnabledEmpty
// says the site's send button is enabled on an empty composer; only then is
// a button disabled before typing a fault of the page (a read-only site),
// never of the text.
type ProbeChat struct {
	Fan              string `json:"fan,omitempty"`
	SendEnabledEmpty bool   `json:"sendEnabledEmpty,omitempty"`
}

// HistoryReady: the history is counted once Selector (if set) matches an
// element (the chat's script marks its rendered history; a chat whose
// history is not yet rendered counts 0 before and after a committed click,
// and the read-back would send it again), and then only when two reads
// StableMs apart agree (a list still filling up counts differently each
// time). The safe default when the site's marker is unknown is a generous
// StableMs; a selector is better.
type HistoryReady struct {
	Selector string `json:"selector,omitempty"`
	// StableMs is the settle between the two reads; 0 means
	// DefaultHistoryStable.
	StableMs int `json:"stableMs,omitempty"`
}

// DefaultHistoryStable is the settle between the two reads of a history
// that must agree.
const DefaultHistoryStable = 300 * time.Millisecond

// stable is the settle between two reads of the history.
func (h HistoryReady) stable() time.Duration {
	if h.StableMs <= 0 {
		return DefaultHistoryStable
	}
	return time.Duration(h.StableMs) * time.Millisecond
}

// SendRequest is the site's own request behind the send button: its HTTP
// status is the send's outcome.
type SendRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"` // glob, as Playwright matches URLs
	// AnswerType is the media type of the send API's own answer: a 2xx of
	// another type (a CDN's or a bot wall's HTML interstitial in front of
	// the API, which reached no origin) is an unknown outcome, read back,
	// not a send (review 22 L: it was taken for sent and the message was
	// lost); a 4xx of another type (a WAF's or a front's page for every
	// send) is an outage, not a refusal of this fan (review 22 L: every
	// message was dead-lettered). Empty: every answer is the API's.
	AnswerType string `json:"answerType,omitempty"`
	// RefusalField is the dotted path of a field that the send API's own
	// refusal (a 4xx about this send: a blocked fan, a body it will not
	// take) carries in its JSON body, e.g. "error.code". A 4xx without it
	// is a front's answer in the API's place (a gateway's "no route", a
	// WAF's JSON block page), about every send: an outage, never a dead
	// letter (review 22 M: a JSON 404 or 403 on every send dead-lettered
	// every creator's messages). Empty: every 4xx of AnswerType is the
	// API's.
	RefusalField string `json:"refusalField,omitempty"`
	// FanInPath: the send request's URL path names the fan, a segment
	// equal to the fan's id (as the chat path does). A send request that
	// does not (a page showing another fan's chat at this fan's address:
	// a router or a cache serving the wrong chat) is refused before it
	// leaves: not sent, the site's outage (review 22 W B: a misrouted
	// chat document sent fan-1's message to fan-9). false: not checked.
	FanInPath bool `json:"fanInPath,omitempty"`
}

// NamesFan reports whether the send request to rawURL is for fan: with
// FanInPath, the segment of its path where URL's glob has a lone "*" (its
// segments aligned from the end) is fan's id; a glob without one, a
// segment that is none of the glob's own words. Without FanInPath, always.
// Only the wildcard's place counts: a fan whose id is one of the route's
// words ("messages", "chats") must not pass another fan's request
// (review 22 AA A).
func (r SendRequest) NamesFan(rawURL, fan string) bool {
	if !r.FanInPath {
		return true
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	var segs []string
	for _, seg := range strings.Split(strings.Trim(u.EscapedPath(), "/"), "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return false
		}
		segs = append(segs, dec)
	}
	route := r.routeSegments()
	wild := false
	for k, word := range route {
		if word != "*" {
			continue
		}
		wild = true
		if i := len(segs) - (len(route) - k); i >= 0 && segs[i] == fan {
			return true
		}
	}
	return !wild && slices.Contains(segs, fan) && !slices.Contains(route, fan)
}

// routeSegments is the path segments of URL's glob after its last "**/"
// (or its whole path): the route a matching request's path ends with.
func (r SendRequest) routeSegments() []string {
	tail := r.URL
	if i := strings.LastIndex(tail, "**/"); i >= 0 {
		tail = tail[i+len("**/"):]
	} else if u, err := url.Parse(tail); err == nil && u.Host != "" {
		tail = u.Path
	}
	return strings.Split(strings.Trim(tail, "/"), "/")
}

// OwnAnswer reports whether an answer with content type ct (its
// Content-Type header) is the send API's own, not a front's in its place:
// see AnswerType.
func (r SendRequest) OwnAnswer(ct string) bool {
	if r.AnswerType == "" {
		return true
	}
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), r.AnswerType)
}

// OwnRefusal reports whether a 4xx answer's body is the send API's own
// refusal: a JSON object holding RefusalField (see there).
func (r SendRequest) OwnRefusal(body []byte) bool {
	if r.RefusalField == "" {
		return true
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	for _, name := range strings.Split(r.RefusalField, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = obj[name]; !ok || v == nil {
			return false
		}
	}
	return true
}

// Cookie names the session cookie.
type Cookie struct {
	Name     string `json:"name"`
	SameSite string `json:"sameSite"` // Strict | Lax | None
}

// Login recognises the login page (the session is gone): a final URL
// containing URLContains, or an element matching Selector.
type Login struct {
	URLContains string `json:"urlContains"`
	Selector    string `json:"selector"`
}

// SessionCheck tells a rejected session from a refusal about one fan.
// Statuses are the answers (to a send or a chat page) that may be a
// refusal for this one fan (blocked, deleted, not subscribed) or a
// rejected session: the sender then fetches Path with the session.
// Only a 2xx JSON object holding a non-empty Identity field (e.g. the
// user's id) says the session is good (the refusal is then the fan's); a
// 401, a redirect or the login page says it is rejected; anything else (a
// CDN's 403 challenge page, an app shell) says nothing: an outage. A 401 is
// an authentication answer and never a refusal about a fan: it cannot be
// one of Statuses (docs/scraper.md).
type SessionCheck struct {
	Path     string `json:"path"`
	Identity string `json:"identity"`
	Statuses []int  `json:"statuses"`
}

// DefaultGatewayStatuses are a gateway's answers when its origin did not
// answer (Profile.GatewayStatuses omitted): the safe reading for a site
// whose front is not known. Besides 502-504, a CDN's origin errors
// (Cloudflare's 520-527: 524 says the origin took the request and did not
// answer in time, so it may still commit it; review 22 E).
var DefaultGatewayStatuses = []int{502, 503, 504, 520, 521, 522, 523, 524, 525, 526, 527}

// Gateway reports whether status is a gateway's answer for an origin that
// did not answer (GatewayStatuses): the origin may still be at work.
func (p Profile) Gateway(status int) bool {
	list := p.GatewayStatuses
	if list == nil {
		list = DefaultGatewayStatuses
	}
	for _, s := range list {
		if s == status {
			return true
		}
	}
	return false
}

// Ambiguous reports whether status may be the session's or the fan's.
func (c SessionCheck) Ambiguous(status int) bool {
	for _, s := range c.Statuses {
		if s == status {
			return true
		}
	}
	return false
}

// proves reports whether body is a JSON object whose Identity field is
// there and not empty (null, false, 0, "" and {} prove nothing).
func (c SessionCheck) proves(body []byte) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return false
	}
	v, ok := obj[c.Identity]
	if !ok {
		return false
	}
	switch strings.TrimSpace(string(v)) {
	case "", "null", "false", "0", `""`, "{}", "[]":
		return false
	}
	return true
}

// DefaultProfile is our best knowledge of OnlyFans' web app (chat path,
// API route, session cookie name): the built-in profile profiles.Default,
// a document per chat. The element selectors are the ones the fake site
// serves and must be checked against the live site before production
// (docs/scraper.md: make e2e-real).
func DefaultProfile() Profile { return mustBuiltin(profiles.Default) }

// SPAProfile is DefaultProfile for OnlyFans' web app as the single-page
// app it is (the built-in profiles.SPA): chats switched inside the app
// (Profile.InApp). Its identity marker is the fake site's and a guess for
// the live site (docs/scraper.md).
func SPAProfile() Profile { return mustBuiltin(profiles.SPA) }

func mustBuiltin(name string) Profile {
	p, err := BuiltinProfile(name)
	if err != nil {
		panic(err.Error()) // a test keeps every built-in profile valid
	}
	return p
}

// BuiltinProfile is the profile embedded in the binary under name
// (profiles.Names: SITE_PROFILE).
func BuiltinProfile(name string) (Profile, error) {
	b, err := profiles.Lookup(name)
	if err != nil {
		return Profile{}, err
	}
	p, err := ParseProfile(b)
	if err != nil {
		return Profile{}, fmt.Errorf("built-in site profile %s: %w", name, err)
	}
	return p, nil
}

// SelectProfile is the profile a scraper runs with: the file if one is
// given (SITE_PROFILE_FILE), else the built-in profile name (SITE_PROFILE,
// whose default the settings hold). Each error names the setting it comes
// from.
func SelectProfile(name, file string) (Profile, error) {
	if file != "" {
		p, err := LoadProfile(file)
		if err != nil {
			return Profile{}, fmt.Errorf("SITE_PROFILE_FILE: %w", err)
		}
		return p, nil
	}
	p, err := BuiltinProfile(name)
	if err != nil {
		return Profile{}, fmt.Errorf("SITE_PROFILE: %w", err)
	}
	return p, nil
}

// LoadProfile reads a profile file; "" gives DefaultProfile.
func LoadProfile(path string) (Profile, error) {
	if path == "" {
		return DefaultProfile(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Profile{}, fmt.Errorf("site profile: %w", err)
	}
	p, err := ParseProfile(b)
	if err != nil {
		return Profile{}, fmt.Errorf("site profile %s: %w", path, err)
	}
	return p, nil
}

// ParseProfile decodes and validates a profile; unknown fields are errors
// (a misspelt key would otherwise silently keep a default).
func ParseProfile(b []byte) (Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Profile{}, err
	}
	return p, p.Validate()
}

// Validate names every field that is missing or malformed.
func (p Profile) Validate() error {
	var errs []error
	need := func(field, v string) {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("%s is required", field))
		}
	}
	need("name", p.Name)
	need("input", p.Input)
	need("send", p.Send)
	need("history", p.History)
	need("sendRequest.url", p.SendRequest.URL)
	need("sessionCookie.name", p.SessionCookie.Name)
	if u, err := url.Parse(p.BaseURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		errs = append(errs, fmt.Errorf("baseUrl must be an absolute http(s) URL, got %q", p.BaseURL))
	}
	if !strings.HasPrefix(p.ChatPath, "/") || strings.Count(p.ChatPath, "{fan}") != 1 {
		errs = append(errs, fmt.Errorf("chatPath must start with / and hold {fan} once, got %q", p.ChatPath))
	}
	switch strings.ToUpper(p.SendRequest.Method) {
	case "POST", "PUT", "PATCH":
	default:
		errs = append(errs, fmt.Errorf("sendRequest.method must be POST, PUT or PATCH, got %q", p.SendRequest.Method))
	}
	if !strings.HasPrefix(p.SessionCheck.Path, "/") {
		errs = append(errs, fmt.Errorf("sessionCheck.path must start with /, got %q", p.SessionCheck.Path))
	}
	need("sessionCheck.identity", p.SessionCheck.Identity)
	if len(p.SessionCheck.Statuses) == 0 {
		errs = append(errs, errors.New("sessionCheck.statuses is required (which answers may mean a rejected session)"))
	}
	errs = append(errs, p.statusErrors()...)
	if p.HistoryID != "" && !attributeName.MatchString(p.HistoryID) {
		errs = append(errs, fmt.Errorf("historyId must be an attribute name (e.g. data-id), got %q", p.HistoryID))
	}
	if p.HistoryReady.StableMs < 0 {
		errs = append(errs, fmt.Errorf("historyReady.stableMs must not be negative, got %d", p.HistoryReady.StableMs))
	}
	if err := p.chatErrors(); err != nil {
		errs = append(errs, err)
	}
	if err := p.Text.validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := p.sameSite(); err != nil {
		errs = append(errs, err)
	}
	if p.Login.URLContains == "" && p.Login.Selector == "" {
		errs = append(errs, errors.New("login needs urlContains or selector (how an expired session shows)"))
	}
	return errors.Join(errs...)
}

// chatErrors names what is missing or malformed in how the profile opens
// a chat inside the app and names the open chat's fan.
func (p Profile) chatErrors() error {
	errs := []error{p.InApp.validate()}
	if p.ChatIdentity != nil {
		if p.InApp != nil {
			errs = append(errs, errors.New("chatIdentity and inApp.identity are both set: an in-app profile names the fan with inApp.identity alone"))
		} else {
			errs = append(errs, p.ChatIdentity.validate("chatIdentity"))
		}
	}
	if p.InApp != nil && p.HistoryReady.Selector == "" {
		errs = append(errs, errors.New("inApp needs historyReady.selector (a switched chat is read only once its history marker is there)"))
	}
	return errors.Join(errs...)
}

// statusErrors names the status lists' entries out of their range.
func (p Profile) statusErrors() []error {
	var errs []error
	for _, st := range p.SessionCheck.Statuses {
		if st < 400 || st > 499 || st == 429 || st == 401 {
			errs = append(errs, fmt.Errorf("sessionCheck.statuses must be 4xx other than 401 (an authentication answer, never a refusal about one fan) and 429, got %d", st))
		}
	}
	for _, st := range p.GatewayStatuses {
		if st < 500 || st > 599 {
			errs = append(errs, fmt.Errorf("gatewayStatuses must be 5xx, got %d", st))
		}
	}
	return errs
}

// attributeName is an HTML attribute name as a profile may give one.
var attributeName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]*$`)

func (p Profile) sameSite() (*playwright.SameSiteAttribute, error) {
	switch p.SessionCookie.SameSite {
	case "Strict":
		return playwright.SameSiteAttributeStrict, nil
	case "Lax", "":
		return playwright.SameSiteAttributeLax, nil
	case "None":
		return playwright.SameSiteAttributeNone, nil
	}
	return nil, fmt.Errorf("sessionCookie.sameSite must be Strict, Lax or None, got %q", p.SessionCookie.SameSite)
}

// chatURL is the fan's chat on base.
func (p Profile) chatURL(base, fan string) string {
	return strings.TrimSuffix(base, "/") + p.chatPath(fan)
}

// chatPath is the path of the fan's chat.
func (p Profile) chatPath(fan string) string {
	return strings.Replace(p.ChatPath, "{fan}", url.PathEscape(fan), 1)
}
