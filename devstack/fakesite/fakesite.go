// Package fakesite is a stand-in for OnlyFans in tests: a chat page per fan
// behind a session cookie, a send endpoint that records every accepted
// message with its server time, and faults the test injects (429 with
// Retry-After, 5xx, 4xx, slow answers, dropped connections). It is also the
// oracle of end-to-end tests: sends per rolling window, duplicates, order.
package fakesite

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// Variant is one DOM and API of the site. The scraper reaches either by
// its site profile alone (scraper/onlyfans: profiles/onlyfans.json for A,
// testdata/variant-b.json for B).
type Variant struct {
	Name       string
	ChatRoute  string // mux pattern with {fan}
	SendRoute  string // mux pattern with method and {fan}
	SendURL    string // the page's fetch URL, with %s for the fan
	SendMethod string
	Cookie     string
	LoginPath  string
	// MePath answers 200 to a valid session, 401 otherwise (the
	// profile's sessionCheck.path).
	MePath string
	// HistoryRoute (a single-page app's: "" for a document per chat) is
	// the JSON history the app fetches when it opens a chat (spa.go).
	HistoryRoute string
	ListRoute    string // the app's chat list (JSON)
	chat         *template.Template
	login        string
}

// VariantA is the default profile's DOM.
var VariantA = Variant{
	Name: "a", ChatRoute: "GET /my/chats/chat/{fan}", SendRoute: "POST /api2/v2/chats/{fan}/messages", SendURL: "/api2/v2/chats/%s/messages",
	SendMethod: "POST", Cookie: "sess", LoginPath: "/login", MePath: "/api2/v2/users/me", chat: chatTemplate,
	login: `<!doctype html><title>Login</title><form id="login">Log in</form>`,
}

// VariantB is another web app: other paths, elements, method and cookie.
var VariantB = Variant{
	Name: "b", ChatRoute: "GET /inbox/{fan}/thread", SendRoute: "PUT /api/v3/inbox/{fan}/send", SendURL: "/api/v3/inbox/%s/send",
	SendMethod: "PUT", Cookie: "sid", LoginPath: "/auth/signin", MePath: "/api/v3/me", chat: chatTemplateB,
	login: `<!doctype html><title>Sign in</title><div id="signin">Sign in</div>`,
}

// Sent is one message the site accepted.
type Sent struct {
	Creator string    `json:"creator"`
	Fan     string    `json:"fan"`
	Text    string    `json:"text"`
	Media   []string  `json:"media"`
	At      time.Time `json:"at"`
	// ID is the site's id of the message (its chat element's data-id when
	// ShowMessageIDs is on).
	ID string `json:"id"`
	// Deleted: the creator deleted it afterwards (DeleteSent): no longer
	// shown in the chat, still counted as sent.
	Deleted bool `json:"deleted,omitempty"`
}

// Fault is what the send endpoint does instead of (or before) accepting.
// Commit with Drop is an origin that dies (or a proxy that resets) after
// recording the send; Commit with Status 502/504 is a gateway answering an
// error after its origin committed.
type Fault struct {
	Status     int           // answer this status (without recording unless Commit)
	RetryAfter string        // Retry-After header with Status
	Delay      time.Duration // wait before answering
	// Commit (RecordThenDelay is the same) accepts the message first, then
	// does the rest of the fault: waits Delay, drops, or answers Status (a
	// send that happened while the client never heard that it did).
	Commit          bool
	RecordThenDelay bool
	Drop            bool // close the connection without an answer
}

// Outage is how the whole site is unavailable.
type Outage int

const (
	// Up: no outage.
	Up Outage = iota
	// Refused: nothing listens on the site's port (connection refused).
	Refused
	// Hanging: every request waits and never gets an answer.
	Hanging
	// Storm: every page and send answers 502 (a gateway whose origin is
	// gone), nothing is recorded.
	Storm
	// Reset: every request's connection is reset without an answer.
	Reset
)

// String names the outage in test names.
func (o Outage) String() string {
	return [...]string{"up", "refused", "hanging", "5xx-storm", "reset"}[o]
}

// Site is a running fake site.
type Site struct {
	*httptest.Server
	variant  Variant
	mu       sync.Mutex
	sessions map[string]string // session token -> creator
	sent     []Sent
	faults   []Fault // consumed one per send request, in order
	refused  map[string]int
	requests int
	assets   int
	onSent   func(Sent)
	// slowPages chat page loads wait pageDelay first (a timeout before any
	// click).
	slowPages int
	pageDelay time.Duration
	// stores rewrites a text before it is recorded (a composer or server
	// that normalises).
	stores func(string) string
	// pageRetries makes the chat page's script retry a send whose request
	// failed without an answer, once (web apps do).
	pageRetries bool
	brokenPages int
	outage      Outage
	outageEnd   chan struct{}
	listener    *switchListener

	// rejectText: the composer keeps its send button disabled while the
	// typed text holds it (a site refusing this text in the page).
	rejectText string
	// latest > 0: a chat page shows only its latest messages (older ones
	// would load on scroll).
	latest int
	// ids: each message of a chat page carries its id (data-id).
	ids bool
	// slowFans: every chat open of the fan waits this long (SlowChat).
	slowFans map[string]time.Duration
	// misroutes chat opens answer the chat of misrouteTo (MisrouteChats).
	misroutes  int
	misrouteTo string
}

// ShowLatest makes every chat page show only the creator's latest n
// messages to the fan (0: all), as chat web apps do (older ones load on
// scroll).
func (s *Site) ShowLatest(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest = n
}

// ShowMessageIDs makes every message of a chat page carry the site's id of
// that message in a data-id attribute (a profile's historyId).
func (s *Site) ShowMessageIDs(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids = on
}

// DeleteSent deletes the accepted message with id from its chat (the
// creator took it back): chat pages no longer show it; Sent and Texts
// still count it.
func (s *Site) DeleteSent(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.sent {
		if s.sent[i].ID == id {
			s.sent[i].Deleted = true
		}
	}
}

// BreakChatPages serves the next n chat pages without their composer (a
// maintenance page, the script bundle's CDN down: a page-level failure,
// which the scraper takes as an outage).
func (s *Site) BreakChatPages(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.brokenPages = n
}

// RejectTexts makes every chat page's composer keep its send button
// disabled while the typed text contains part (the site refusing this
// message's text in the page: too long, a forbidden word): a failure of
// that message, the page being fine. "" stops it.
func (s *Site) RejectTexts(part string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectText = part
}

// StoreAs makes the site record every text as f(text) (e.g. trimmed or
// with CR removed, as a server may store it).
func (s *Site) StoreAs(f func(string) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stores = f
}

// PageRetriesSends makes the chat page's script send again, once, when
// its send request fails without an answer.
func (s *Site) PageRetriesSends(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageRetries = on
}

// SetOutage puts the whole site into outage o (Up ends it). Open
// connections are closed, so kept pages see it at once.
func (s *Site) SetOutage(o Outage) {
	s.mu.Lock()
	prev := s.outage
	s.outage = o
	if prev == Hanging && o != Hanging {
		close(s.outageEnd)
	}
	if o == Hanging && prev != Hanging {
		s.outageEnd = make(chan struct{})
	}
	s.mu.Unlock()
	s.listener.setRefusing(o == Refused)
	if o != Up {
		s.Server.CloseClientConnections()
	}
}

// RejectSessions makes the site forget every session (they expired).
func (s *Site) RejectSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string]string{}
}

// SlowChatPages makes the next n chat page loads wait d before answering.
func (s *Site) SlowChatPages(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowPages, s.pageDelay = n, d
}

// OnSent calls f with every accepted send, right after it is recorded and
// before the site answers: a test can put a fault at that exact moment.
func (s *Site) OnSent(f func(Sent)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSent = f
}

// RefuseFan makes every send to fan answer status (e.g. 404: no such fan,
// 403: the fan blocked the creator), whatever the session.
func (s *Site) RefuseFan(fan string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[fan] = status
}

// Start serves the tests' variant (TestVariant: the document per chat
// unless SCRAPER_TEST_PROFILE says spa) on 127.0.0.1 until the test ends.
func Start(t interface{ Cleanup(func()) }) *Site {
	s := NewVariant(TestVariant())
	t.Cleanup(s.Close)
	return s
}

// StartVariant serves variant v until the test ends.
func StartVariant(t interface{ Cleanup(func()) }, v Variant) *Site {
	s := NewVariant(v)
	t.Cleanup(s.Close)
	return s
}

// New serves the site (variant A) on 127.0.0.1 until Close (make dev).
func New() *Site { return NewVariant(VariantA) }

// NewVariant serves variant v on 127.0.0.1 until Close.
func NewVariant(v Variant) *Site {
	s := &Site{variant: v, sessions: map[string]string{}, refused: map[string]int{}, slowFans: map[string]time.Duration{}}
	mux := http.NewServeMux()
	mux.HandleFunc(v.ChatRoute, s.chatPage)
	if v.HistoryRoute != "" {
		mux.HandleFunc(v.HistoryRoute, s.historyJSON)
		mux.HandleFunc(v.ListRoute, s.chatList)
	}
	mux.HandleFunc(v.SendRoute, s.send)
	// The avatar and web font every chat page loads, as a real web app's
	// do: a send needs neither.
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.assets++
		s.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, ".png") {
			w.Header().Set("Content-Type", "image/png")
		}
		_, _ = w.Write([]byte{0})
	})
	mux.HandleFunc("GET "+v.MePath, func(w http.ResponseWriter, r *http.Request) {
		creator, ok := s.creator(r)
		if !ok {
			apiError(w, "not logged in", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": creator, "ok": true})
	})
	mux.HandleFunc("GET "+v.LoginPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(v.login))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("fakesite: listen: " + err.Error())
	}
	s.listener = newSwitchListener(l)
	s.Server = httptest.NewUnstartedServer(s.outages(mux))
	s.Server.Listener = s.listener
	s.Server.Start()
	return s
}

// outages wraps the site's handler with the current outage.
func (s *Site) outages(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		o, end := s.outage, s.outageEnd
		if o != Up && r.Method == s.variant.SendMethod && strings.HasPrefix(r.URL.Path, strings.Split(s.variant.SendURL, "%s")[0]) {
			s.requests++ // a send request the outage swallowed
		}
		s.mu.Unlock()
		switch o {
		case Hanging:
			select {
			case <-end:
			case <-r.Context().Done():
			}
			hijackReset(w)
			return
		case Storm:
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		case Reset, Refused:
			hijackReset(w)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// hijackReset closes the request's connection with a reset, no answer.
func hijackReset(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
		}
	}
}

// AssetRequests is how many image and font requests the site served.
func (s *Site) AssetRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.assets
}

// AddCreator registers a creator and returns its session token.
func (s *Site) AddCreator(creator string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	token := "session-" + creator
	s.sessions[token] = creator
	return token
}

// InjectFaults queues faults for the next send requests, one each.
func (s *Site) InjectFaults(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// Sent returns every accepted message in arrival order.
func (s *Site) Sent() []Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sent(nil), s.sent...)
}

// SendRequests counts send requests, accepted or not.
func (s *Site) SendRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Site) creator(r *http.Request) (string, bool) {
	c, err := r.Cookie(s.variant.Cookie)
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	creator, ok := s.sessions[c.Value]
	return creator, ok
}

var chatTemplate = template.Must(template.New("chat").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Chat with {{.Fan}}</title>
<style>@font-face{font-family:Site;src:url(/static/site.woff2)} body{font-family:Site,sans-serif}</style></head>
<body><img src="/static/avatar.png" alt="" width="32" height="32">
<main id="chat-pane" data-fan="{{.Fan}}">
<ul id="history">{{if .Start}}<li class="history-start" hidden></li>{{end}}{{range .History}}<li class="message"{{if $.IDs}} data-id="{{.ID}}"{{end}}>{{.Text}}</li>{{end}}<li class="history-end" hidden></li></ul>
<textarea id="message-input" aria-label="Message"></textarea>
<button id="send" type="button">Send</button>
<p id="send-status"></p>
</main>
<script>
{{if .Reject}}document.getElementById('message-input').addEventListener('input', e => { document.getElementById('send').disabled = e.target.value.includes({{.Reject}}) });{{end}}
document.getElementById('send').onclick = async () => {
  const text = document.getElementById('message-input').value;
  for (let left = {{.Retries}}; ; left--) {
    try {
      const r = await fetch({{.SendURL}}, {method: {{.Method}}, headers: {'Content-Type': 'application/json'}, body: JSON.stringify({text})});
      document.getElementById('send-status').textContent = 'status ' + r.status;
      return;
    } catch (e) {
      document.getElementById('send-status').textContent = 'network error';
      if (left <= 0) return;
    }
  }
};
</script>
</body></html>`))

var chatTemplateB = template.Must(template.New("chat-b").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Fan}}</title>
<style>@font-face{font-family:Site;src:url(/static/site.woff2)} body{font-family:Site,sans-serif}</style></head>
<body><img src="/static/avatar.png" alt="" width="32" height="32">
<main class="thread">{{range .History}}<div class="bubble outgoing"{{if $.IDs}} data-id="{{.ID}}"{{end}}><span>{{.Text}}</span></div>{{end}}<div class="bubble incoming"><span>hey, any news?</span></div></main>
<footer><textarea data-test="composer" placeholder="Write a message"></textarea>
<button aria-label="Send message" type="button">&#10148;</button></footer>
<script>
document.querySelector("button[aria-label='Send message']").addEventListener('click', async () => {
  const text = document.querySelector('[data-test=composer]').value;
  try { await fetch({{.SendURL}}, {method: {{.Method}}, headers: {'Content-Type': 'application/json'}, body: JSON.stringify({text})}); } catch (e) {}
});
</script>
</body></html>`))

func (s *Site) chatPage(w http.ResponseWriter, r *http.Request) {
	creator, ok := s.creator(r)
	if !ok {
		http.Redirect(w, r, s.variant.LoginPath, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if s.variant.HistoryRoute != "" {
		// The app's shell: the same document for every chat, which opens
		// the chat of its URL itself (spa.go).
		_ = s.variant.chat.Execute(w, map[string]any{"SendURL": s.variant.SendURL, "Method": s.variant.SendMethod})
		return
	}
	v, ok := s.openChat(r, creator, r.PathValue("fan"))
	if !ok {
		return
	}
	if v.Broken {
		_, _ = w.Write([]byte(`<!doctype html><title>Something went wrong</title><p>Please reload.</p>`))
		return
	}
	_ = s.variant.chat.Execute(w, v)
}

// chatView is what a chat shows: its fan, the creator's messages to the
// fan, and how its page behaves (fields exported for the templates and the
// app's JSON).
type chatView struct {
	Fan     string  `json:"fan"`
	History []shown `json:"messages"`
	IDs     bool    `json:"ids"`
	// Start: the chat shows the conversation from its first message.
	Start   bool   `json:"start"`
	SendURL string `json:"-"`
	Method  string `json:"-"`
	Retries int    `json:"retries"`
	Reject  string `json:"reject"`
	Broken  bool   `json:"broken"`
}

type shown struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// openChat is one opening of a fan's chat (a chat page, or the app's
// history fetch): its faults (a slow or broken page, a misrouted chat),
// then its view. false: the client left during the delay.
func (s *Site) openChat(r *http.Request, creator, fan string) (chatView, bool) {
	s.mu.Lock()
	delay := s.slowFans[fan]
	if s.slowPages > 0 {
		s.slowPages--
		delay = max(delay, s.pageDelay)
	}
	if s.misroutes > 0 {
		s.misroutes--
		fan = s.misrouteTo
	}
	s.mu.Unlock()
	if delay > 0 && !waitUnlessGone(r, delay) {
		return chatView{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := chatView{Fan: fan, IDs: s.ids, Start: s.latest == 0, SendURL: fmt.Sprintf(s.variant.SendURL, fan), Method: s.variant.SendMethod, Reject: s.rejectText}
	for _, m := range s.sent {
		if m.Creator == creator && m.Fan == fan && !m.Deleted {
			v.History = append(v.History, shown{m.ID, m.Text})
		}
	}
	// A page that pages (ShowLatest) never says it starts at the
	// conversation's first message; one that shows everything does.
	if s.latest > 0 && len(v.History) > s.latest {
		v.History = v.History[len(v.History)-s.latest:]
	}
	if s.brokenPages > 0 {
		s.brokenPages--
		v.Broken = true
	}
	if s.pageRetries {
		v.Retries = 1
	}
	return v, true
}

// sendBody is what a chat page's script posts to the send endpoint.
type sendBody struct {
	Text  string   `json:"text"`
	Media []string `json:"media"`
}

// send is the send endpoint: it counts the request and takes its fault,
// checks the session and the body, and records the message either before
// the fault's delay, drop or status (Commit) or only once the fault let
// the request through.
func (s *Site) send(w http.ResponseWriter, r *http.Request) {
	creator, ok := s.creator(r)
	fault := s.takeFault(r.PathValue("fan"))
	if !ok {
		apiError(w, "not logged in", http.StatusUnauthorized)
		return
	}
	var body sendBody
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || strings.TrimSpace(body.Text) == "" {
		apiError(w, "empty message", http.StatusBadRequest)
		return
	}
	sent := Sent{Creator: creator, Fan: r.PathValue("fan"), Text: body.Text, Media: body.Media}
	commit := fault.Commit || fault.RecordThenDelay
	if commit {
		sent = s.record(sent)
	}
	if fault.apply(w, r) {
		return
	}
	if !commit {
		sent = s.record(sent)
	}
	// The message as stored: a single-page app renders it in the chat.
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "id": sent.ID, "text": sent.Text})
}

// takeFault counts a send request and returns what it meets: the fan's
// refusal (RefuseFan), else the next injected fault, else none.
func (s *Site) takeFault(fan string) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if status, ok := s.refused[fan]; ok {
		return Fault{Status: status}
	}
	if len(s.faults) == 0 {
		return Fault{}
	}
	fault := s.faults[0]
	s.faults = s.faults[1:]
	return fault
}

// record accepts sent now: its time, its text as the site stores it, its
// id; then the OnSent hook, outside the lock. It returns sent as recorded.
func (s *Site) record(sent Sent) Sent {
	sent.At = time.Now()
	s.mu.Lock()
	if s.stores != nil {
		sent.Text = s.stores(sent.Text)
	}
	sent.ID = fmt.Sprint("m", len(s.sent)+1)
	s.sent = append(s.sent, sent)
	hook := s.onSent
	s.mu.Unlock()
	if hook != nil {
		hook(sent)
	}
	return sent
}

// apply does the fault's delay, then its drop or its status, and says
// whether that ended the request (nothing more to answer, or the client
// gone during the delay).
func (f Fault) apply(w http.ResponseWriter, r *http.Request) (ended bool) {
	if f.Delay > 0 && !waitUnlessGone(r, f.Delay) {
		return true
	}
	if f.Drop {
		hijackReset(w)
		return true
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	apiError(w, fmt.Sprintf("injected %d", f.Status), f.Status)
	return true
}

// apiError answers as the site's API refuses: a JSON body with its own
// media type and its error envelope, {"error":{"code","message"}} (a
// front's page in its place would be HTML, or JSON without the envelope;
// the scraper tells them apart, SendRequest.AnswerType and RefusalField).
func apiError(w http.ResponseWriter, msg string, status int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg}})
}

// waitUnlessGone waits d, or less if the client goes away first: false
// then.
func waitUnlessGone(r *http.Request, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		return false
	}
}

// MaxInWindow returns, per creator, the largest number of accepted sends in
// any rolling window of length w.
func (s *Site) MaxInWindow(w time.Duration) map[string]int {
	by := map[string][]time.Time{}
	for _, m := range s.Sent() {
		by[m.Creator] = append(by[m.Creator], m.At)
	}
	out := map[string]int{}
	for c, ts := range by {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		j := 0
		for i := range ts {
			for ts[i].Sub(ts[j]) >= w {
				j++
			}
			out[c] = max(out[c], i-j+1)
		}
	}
	return out
}

// Duplicates returns texts accepted more than once for the same creator and fan.
func (s *Site) Duplicates() []string {
	seen := map[string]int{}
	var dups []string
	for _, m := range s.Sent() {
		k := m.Creator + "\x00" + m.Fan + "\x00" + m.Text
		seen[k]++
		if seen[k] == 2 {
			dups = append(dups, m.Text)
		}
	}
	return dups
}

// Texts returns the accepted texts of one creator in arrival order.
func (s *Site) Texts(creator string) []string {
	var out []string
	for _, m := range s.Sent() {
		if m.Creator == creator {
			out = append(out, m.Text)
		}
	}
	return out
}

// Summary is the site's per-creator sent count and busiest window, one
// line per creator (nil site: empty).
func (s *Site) Summary(creators []string, limit int, window time.Duration) string {
	if s == nil {
		return ""
	}
	sent := map[string]int{}
	for _, m := range s.Sent() {
		sent[m.Creator]++
	}
	peak := s.MaxInWindow(window)
	out := ""
	for _, c := range creators {
		out += fmt.Sprintf("  %-12s sent %4d   most in one %s window: %d (limit %d)\n", c, sent[c], window, peak[c], limit)
	}
	return out
}
