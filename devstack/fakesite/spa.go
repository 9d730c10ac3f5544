package fakesite

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"sort"
	"time"
)

// VariantSPA is variant A's site as a single-page app, as the real web app
// is: one document (the shell, served at every chat's URL) holds the chat
// list and the chat pane; opening a chat is client-side routing (the
// history API: a click in the list, or a popstate) with the chat's history
// fetched as JSON, and a send is a fetch whose answer the app renders. The
// pane names its fan in data-fan only once that fan's history has
// rendered. Its profile is scraper/onlyfans/profiles/onlyfans-spa.json.
var VariantSPA = Variant{
	Name: "spa", ChatRoute: "GET /my/chats/chat/{fan}", SendRoute: "POST /api2/v2/chats/{fan}/messages", SendURL: "/api2/v2/chats/%s/messages",
	SendMethod: "POST", Cookie: "sess", LoginPath: "/login", MePath: "/api2/v2/users/me",
	HistoryRoute: "GET /api2/v2/chats/{fan}/messages", ListRoute: "GET /api2/v2/chats", chat: appShell,
	login: `<!doctype html><title>Login</title><form id="login">Log in</form>`,
}

// TestProfileEnv names the environment variable that picks the variant
// Start serves (and the profile the scraper's tests use): "spa" or
// "document" (the default).
const TestProfileEnv = "SCRAPER_TEST_PROFILE"

// TestVariant is the variant the tests run against (TestProfileEnv).
func TestVariant() Variant {
	switch v := os.Getenv(TestProfileEnv); v {
	case "spa":
		return VariantSPA
	case "", "document":
		return VariantA
	default:
		panic(fmt.Sprintf("fakesite: %s=%q: want spa or document", TestProfileEnv, v))
	}
}

// SlowChat makes every opening of fan's chat (its page, or the app's
// history fetch) wait d first; 0 ends it. The app meanwhile still shows
// the chat it showed before.
func (s *Site) SlowChat(fan string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.slowFans, fan)
		return
	}
	s.slowFans[fan] = d
}

// MisrouteChats makes the next n chat openings show fan to's chat instead
// of the one asked for (a router or a cache serving the wrong chat).
func (s *Site) MisrouteChats(n int, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.misroutes, s.misrouteTo = n, to
}

// historyJSON is the app's history fetch of one chat: the same faults as a
// chat page (slow, broken, misrouted), then the chat as JSON.
func (s *Site) historyJSON(w http.ResponseWriter, r *http.Request) {
	creator, ok := s.creator(r)
	if !ok {
		apiError(w, "not logged in", http.StatusUnauthorized)
		return
	}
	v, ok := s.openChat(r, creator, r.PathValue("fan"))
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// chatList is the app's chat list: the fans the creator wrote to.
func (s *Site) chatList(w http.ResponseWriter, r *http.Request) {
	creator, ok := s.creator(r)
	if !ok {
		apiError(w, "not logged in", http.StatusUnauthorized)
		return
	}
	seen := map[string]bool{}
	fans := []string{}
	for _, m := range s.Sent() {
		if m.Creator == creator && !seen[m.Fan] {
			seen[m.Fan] = true
			fans = append(fans, m.Fan)
		}
	}
	sort.Strings(fans)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"fans": fans})
}

// appShell is the single-page app. openChat keeps the chat it showed on
// screen until the new one's history arrived (a slow switch shows the
// previous fan's chat meanwhile), drops answers of superseded openings,
// and names the fan on the pane (data-fan) last, after the history and
// the composer rendered. A failed opening marks the pane data-error and
// leaves the previous chat shown.
var appShell = template.Must(template.New("app").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Chats</title>
<style>@font-face{font-family:Site;src:url(/static/site.woff2)} body{font-family:Site,sans-serif}</style></head>
<body><img src="/static/avatar.png" alt="" width="32" height="32">
<nav id="chat-list"></nav>
<main id="chat-pane"></main>
<script>
const sendURL = fan => {{.SendURL}}.replace('%s', encodeURIComponent(fan));
const historyURL = fan => '/api2/v2/chats/' + encodeURIComponent(fan) + '/messages';
const prefix = '/my/chats/chat/';
const pane = document.getElementById('chat-pane');
let opening = 0;
const el = (tag, props) => Object.assign(document.createElement(tag), props || {});
function item(m, ids) {
  const li = el('li', {className: 'message', textContent: m.text});
  if (ids) li.dataset.id = m.id;
  return li;
}
function render(chat) {
  const ul = el('ul', {id: 'history'});
  if (chat.start) ul.append(el('li', {className: 'history-start', hidden: true}));
  for (const m of chat.messages || []) ul.append(item(m, chat.ids));
  const end = el('li', {className: 'history-end', hidden: true});
  ul.append(end);
  const input = el('textarea', {id: 'message-input'});
  input.setAttribute('aria-label', 'Message');
  const button = el('button', {id: 'send', type: 'button', textContent: 'Send'});
  const status = el('p', {id: 'send-status'});
  if (chat.reject) input.addEventListener('input', () => { button.disabled = input.value.includes(chat.reject) });
  button.onclick = async () => {
    const text = input.value;
    for (let left = chat.retries; ; left--) {
      try {
        const r = await fetch(sendURL(chat.fan), {method: {{.Method}}, headers: {'Content-Type': 'application/json'}, body: JSON.stringify({text})});
        status.textContent = 'status ' + r.status;
        if (r.ok) { const m = await r.json(); end.before(item(m, chat.ids)); input.value = ''; }
        return;
      } catch (e) {
        status.textContent = 'network error';
        if (left <= 0) return;
      }
    }
  };
  pane.replaceChildren(ul, input, button, status);
  delete pane.dataset.error;
  pane.dataset.fan = chat.fan;
}
async function openChat(fan) {
  const mine = ++opening;
  delete pane.dataset.error;
  const failed = why => { if (mine === opening) pane.dataset.error = why; };
  let r, chat;
  try {
    r = await fetch(historyURL(fan), {cache: 'no-store'});
    if (r.status === 401) { location.assign('/login'); return; }
    if (!r.ok) return failed('status ' + r.status);
    chat = await r.json();
  } catch (e) { return failed('network'); }
  if (mine !== opening) return;
  if (chat.broken) {
    pane.replaceChildren(el('p', {textContent: 'Something went wrong. Please reload.'}));
    return failed('broken');
  }
  render(chat);
}
function route() {
  if (location.pathname.startsWith(prefix)) openChat(decodeURIComponent(location.pathname.slice(prefix.length)));
}
async function loadList() {
  try {
    const r = await fetch('/api2/v2/chats', {cache: 'no-store'});
    if (!r.ok) return;
    const list = document.getElementById('chat-list');
    for (const fan of (await r.json()).fans) list.append(el('a', {href: prefix + encodeURIComponent(fan), textContent: fan, dataset: {}}));
    for (const a of list.querySelectorAll('a')) a.dataset.fan = decodeURIComponent(a.pathname.slice(prefix.length));
  } catch (e) {}
}
document.addEventListener('click', e => {
  const a = e.target.closest('#chat-list a[data-fan]');
  if (!a) return;
  e.preventDefault();
  history.pushState(null, '', a.href);
  route();
});
window.addEventListener('popstate', route);
route();
loadList();
</script>
</body></html>`))
