package onlyfans

import (
	"errors"
	"fmt"
	"strings"

	"github.com/playwright-community/playwright-go"
)

// switchScript removes the identity attribute of the open chat (so that
// only the app's render of the chat switched to names a fan again), then
// asks the app's router to open path. false: no identity element (the page
// does not hold the app as the profile describes it).
const switchScript = `([selector, attribute, path]) => {
	const pane = document.querySelector(selector);
	if (!pane) return false;
	pane.removeAttribute(attribute);
	history.pushState(null, '', path);
	dispatchEvent(new PopStateEvent('popstate', {state: null}));
	return true;
}`

// confirmScript says what the page shows: "fan" (the chat names fan and
// its history marker is there), "other:<who>" (another fan's chat),
// "failed" (the app's error state), "login" (the login page), or false
// (not yet).
const confirmScript = `([selector, attribute, fan, ready, failed, loginURL, loginSelector]) => {
	if ((loginURL && location.href.includes(loginURL)) || (loginSelector && document.querySelector(loginSelector))) return 'login';
	if (failed && document.querySelector(failed)) return 'failed';
	const pane = document.querySelector(selector);
	const who = pane && pane.getAttribute(attribute);
	if (!who) return false;
	if (who !== fan) return 'other:' + who;
	return !ready || document.querySelector(ready) ? 'fan' : false;
}`

// openInApp opens fan's chat inside the app c's kept page holds (loaded
// and confirmed by an earlier opening), and reports whether the page then
// confirmed it is fan's chat with its history ready (Profile.InApp). false
// is any doubt: the caller loads the chat as a document instead.
func (s *Sender) openInApp(c *chat, fan string) bool {
	in := s.cfg.Profile.InApp
	if in == nil || !c.kept || !s.takeAppOpen(c.cc) || !strings.HasPrefix(c.page.URL(), strings.TrimSuffix(s.cfg.BaseURL, "/")+"/") {
		return false
	}
	ok, err := c.page.Evaluate(switchScript, []any{in.Identity.Selector, in.Identity.Attribute, s.cfg.Profile.chatPath(fan)})
	if err != nil || ok != true {
		return false
	}
	if s.confirmChat(c.page, &in.Identity, fan) != nil {
		return false
	}
	s.appOpened(c)
	return true
}

// confirmChat waits until the page names fan as its open chat (id: the
// profile's fanIdentity), in an app with the history ready. A timeout is ErrTimeout;
// another fan's chat, the app's error state or the login page are errors
// at once.
func (s *Sender) confirmChat(page playwright.Page, id *ChatIdentity, fan string) error {
	p := s.cfg.Profile
	// An app names the fan only once its history rendered, so it waits for
	// both; a document's history is waited for by history(), whose
	// timeout is the chat's fault (ErrChatUnusable) rather than the
	// site's (review 22 C: one fan's history never rendering).
	failed, ready := "", ""
	if p.InApp != nil {
		failed, ready = p.InApp.Failed, p.HistoryReady.Selector
	}
	h, err := page.WaitForFunction(confirmScript, []any{id.Selector, id.Attribute, fan, ready, failed, p.Login.URLContains, p.Login.Selector},
		playwright.PageWaitForFunctionOptions{Polling: playwright.Float(20), Timeout: ms(s.cfg.Timeouts.Navigation)})
	if err != nil {
		return classify("open chat: confirm the chat's fan", err)
	}
	v, err := h.JSONValue()
	_ = h.Dispose()
	if err != nil {
		return classify("confirm the chat's fan", err)
	}
	if v == "login" {
		return errLoginShown
	}
	if who, ok := v.(string); ok && strings.HasPrefix(who, "other:") {
		return fmt.Errorf("%w: the page shows the chat of %s, not the chat of the fan asked for", ErrOtherFansChat, strings.TrimPrefix(who, "other:"))
	}
	if v != "fan" {
		return fmt.Errorf("%w: the page shows %v, not the chat of the fan asked for", ErrChatUnusable, v)
	}
	return nil
}

// ErrOtherFansChat marks a chat page naming another fan than the one asked
// for: a router or a cache serving the wrong chat at this fan's address.
// It is never ErrChatUnusable: no fault of one fan's own chat (a deleted
// account, a corrupt thread) shows another fan's, so the probe chat
// working says nothing about this fan and the page is the site's outage
// however long it lasts (review 22 Y A: one fan's misrouted chat was
// counted as that fan's broken chat and dead-lettered, a sent message
// among them).
var ErrOtherFansChat = errors.New("the page shows another fan's chat")

// errLoginShown: the page shows the login page instead of the chat.
var errLoginShown = errors.New("the page shows the login page")

// takeAppOpen reports whether cc's kept page holds the app, confirmed by
// its last opening, and clears that until an opening confirms again.
func (s *Sender) takeAppOpen(cc *creatorContext) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := cc.appOpen
	cc.appOpen = false
	return was
}

// appOpened records that c's page holds the app with a confirmed chat.
func (s *Sender) appOpened(c *chat) {
	if !c.kept || s.cfg.Profile.InApp == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.cc.appOpen = true
}
