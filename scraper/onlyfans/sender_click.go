package onlyfans

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/internal/message"
)

// openChat opens fan's chat in c's page: inside the app where the profile
// allows it (openInApp), else (and on any doubt there) as a document, whose
// page must then confirm the fan too when the profile names its identity.
func (s *Sender) openChat(c *chat, fan string) (*Result, error) {
	if s.openInApp(c, fan) {
		return nil, nil
	}
	page := c.page
	resp, err := page.Goto(s.cfg.Profile.chatURL(s.cfg.BaseURL, fan), playwright.PageGotoOptions{Timeout: ms(s.cfg.Timeouts.Navigation)})
	if err != nil {
		// Refused, unresolvable, TLS-failing, reset or hanging: the site
		// (or the way to it) is down, not this message.
		return nil, fmt.Errorf("%w: %w", ErrSiteDown, classify("open chat", err))
	}
	if s.onLoginPage(page) {
		return &Result{Status: 401, LoginPage: true}, nil
	}
	if resp != nil && s.cfg.Profile.Gateway(resp.Status()) {
		// A gateway's answer (one dead backend behind a balancer, an
		// origin not answering) is about the site, whoever the fan: an
		// outage, never this fan's broken chat (review 22 D).
		return nil, fmt.Errorf("%w: chat page answered %d (a gateway's answer: the site's outage)", ErrSiteDown, resp.Status())
	}
	if resp != nil && resp.Status() >= 500 {
		return nil, fmt.Errorf("%w: %w: chat page answered %d", ErrSiteDown, ErrChatUnusable, resp.Status())
	}
	if resp != nil && resp.Status() >= 400 {
		st := resp.Status()
		if st == 401 || st == 429 || s.cfg.Profile.SessionCheck.Ambiguous(st) {
			// Each has its own check: the session, the site's rate, the
			// session then this fan (the processor's refused).
			return &Result{Status: st, RetryAfter: retryAfter(resp.Headers()), ChatPage: true}, nil
		}
		// Any other 4xx of a chat page refuses no send (none was made):
		// a front-end deploy missing the route, a CDN's bad rule, or this
		// fan's chat alone (a deleted account). An unusable chat: the
		// probe chat tells which (review 22 J: 3 s of 404 on every chat
		// page dead-lettered every creator's head message at once).
		return nil, fmt.Errorf("%w: %w: chat page answered %d", ErrSiteDown, ErrChatUnusable, st)
	}
	if id := s.cfg.Profile.fanIdentity(); id != nil {
		// The page must name this fan before anything is typed, counted or
		// read back (Profile.ChatIdentity): another fan's chat at this
		// fan's address is the site's outage. An app renders the chat
		// after its document loaded (within the navigation timeout, as a
		// document would load), as after a switch inside it.
		if err := s.confirmChat(page, id, fan); errors.Is(err, errLoginShown) {
			return &Result{Status: 401, LoginPage: true}, nil
		} else if err != nil {
			return nil, fmt.Errorf("%w: open chat: %w", ErrSiteDown, err)
		}
		s.appOpened(c)
	}
	// A chat page without its composer (a maintenance page, the script
	// bundle's CDN down, a front-end that failed to render) is the page's
	// failure, not this message's: an outage. Its history is not read
	// either (it would count nothing and call an unknown send not sent).
	if err := page.Locator(s.cfg.Profile.Input).First().WaitFor(playwright.LocatorWaitForOptions{
		State: playwright.WaitForSelectorStateAttached, Timeout: ms(s.cfg.Timeouts.Action)}); err != nil {
		return nil, fmt.Errorf("%w: %w: the chat page shows no composer (%s): %w", ErrSiteDown, ErrChatUnusable, s.cfg.Profile.Input, classify("open chat", err))
	}
	return nil, nil
}

// Send sends msg as creator. beforeClick (may be nil) runs after the page
// is ready and right before the send click, with the Mark of the chat at
// that moment (how many messages of the same text it shows to that fan,
// and the messages shown last: ReadBack's anchor): an error from it stops
// the send unclicked and is returned as is (the scraper's rate gate and
// attempt mark use it, so the time it admits is the time the site sees).
//
// The site's send request never leaves through Chromium's network stack:
// the sender intercepts it and makes it itself, once, without retries
// (Chromium silently re-sends a POST whose reused keep-alive connection
// closed before an answer; a request made here cannot be replayed). Any
// further send request the page issues for the same click is counted in
// Result.Requests and refused, so one click reaches the site at most once.
//
// Result.Outcome says whether the site took the message: Sent (2xx),
// NotSent (no click, or a 4xx), Unknown (5xx, 3xx, no answer, a crash
// after the click): only reading the chat back settles an unknown one.
// Errors: ErrSiteDown (the site is unreachable, hanging or failing, or its
// chat page shows no composer: an outage), ErrBrowserDown (the browser
// cannot start: the task's outage), ErrTimeout, ErrBrowser. A chat page
// showing the login page is Result.LoginPage (Status 401). Artifacts (scrubbed of the session) are
// returned whenever the send did not end with a 2xx.
func (s *Sender) Send(ctx context.Context, creator string, creds Credentials, msg message.Message, beforeClick func(before Mark) error) (res Result, art *Artifacts, err error) {
	c, err := s.lend(creator, creds)
	if err != nil {
		return Result{}, nil, err
	}
	traced := c.kept && c.cc.tracing && c.cc.ctx.Tracing().StartChunk(playwright.TracingStartChunkOptions{Title: playwright.String(msg.MessageID)}) == nil
	stoppedBeforeClick := false
	defer func() {
		if traced {
			art = s.endTrace(c, art)
		}
		art = scrubArtifacts(art, creds.SessionCookie)
		// A timeout or browser error may leave the page stuck mid-action;
		// a send stopped by beforeClick only left typed text, which the
		// next navigation drops.
		if res.discardContext {
			s.discard(c)
			return
		}
		s.giveBack(c, (err == nil && res.Outcome != Unknown) || stoppedBeforeClick)
	}()
	page := c.page
	early, err := s.openChat(c, msg.RecipientID)
	if err == nil && early == nil {
		err = s.sendableEmpty(page)
	}
	if errors.Is(err, ErrSiteDown) {
		// No page of the site to capture (an error page, or a navigation
		// still waiting on a hanging site).
		return Result{}, nil, err
	}
	if err != nil || early != nil {
		if early != nil {
			res = *early
		}
		return res, capture(page), err
	}
	leaveBy, stopped, err := s.prepare(ctx, page, msg, beforeClick)
	switch {
	case stopped:
		stoppedBeforeClick = true
		return Result{}, nil, err
	case err != nil:
		return Result{}, capture(page), err
	}
	return s.click(ctx, page, msg.RecipientID, leaveBy)
}

// act runs one step of a send unless ctx ended, its error classified.
func act(ctx context.Context, what string, f func() error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := f(); err != nil {
		return classify(what, err)
	}
	return nil
}

// prepare types msg and, when beforeClick is set, hands it the chat's Mark
// right before the click; stopped says beforeClick's error stopped the
// send (nothing clicked). leaveBy is the mark's LeaveBy: no send request
// of the click leaves the browser after it.
func (s *Sender) prepare(ctx context.Context, page playwright.Page, msg message.Message, beforeClick func(before Mark) error) (leaveBy time.Time, stopped bool, err error) {
	if err := act(ctx, "type message", func() error {
		return page.Locator(s.cfg.Profile.Input).Fill(s.cfg.Profile.Text.Typed(msg.Content), playwright.LocatorFillOptions{Timeout: ms(s.cfg.Timeouts.Action)})
	}); err != nil {
		return time.Time{}, false, unusableOnTimeout(err, "the composer cannot be typed into")
	}
	if beforeClick == nil {
		return time.Now().Add(s.cfg.Timeouts.LeaveWithin()), false, nil
	}
	shown, complete, err := s.history(page)
	if err != nil {
		return time.Time{}, false, err
	}
	mark := NewMark(shown, s.digest(msg.Content))
	mark.Complete = complete
	leaveBy = time.Now().Add(s.cfg.Timeouts.LeaveWithin())
	mark.LeaveBy = leaveBy.UnixMilli()
	if err := beforeClick(mark); err != nil {
		return time.Time{}, true, err
	}
	return leaveBy, false, nil
}

// click clicks send and reads the answer to the one send request let
// through (Send's Result and errors). Its window closes when it returns
// (attempt.close): no request of it leaves after that, or after leaveBy.
func (s *Sender) click(ctx context.Context, page playwright.Page, fan string, leaveBy time.Time) (res Result, art *Artifacts, err error) {
	att := s.arm(page, fan, leaveBy)
	defer s.disarm(page)
	defer func() {
		res.LeftBy = att.close().UnixMilli()
		att.mu.Lock()
		res.discardContext = att.aborted
		att.mu.Unlock()
	}()
	clickErr := act(ctx, "send", func() error {
		return page.Locator(s.cfg.Profile.Send).Click(playwright.LocatorClickOptions{Timeout: ms(s.cfg.Timeouts.Action)})
	})
	if clickErr != nil && att.seal() {
		// Nothing left the page: not sent.
		return Result{}, capture(page), s.unclicked(page, clickErr)
	}
	ans, answered := att.wait(ctx, s.cfg.Timeouts.Response+answerGrace)
	if !answered || ans.err != nil || !(ans.status >= 200 && ans.status < 300) {
		// The page may issue more send requests (its own retry): give it
		// a moment so that they are counted (and refused).
		time.Sleep(settle)
	}
	res = Result{Requests: att.issued()}
	switch {
	case answered && ans.otherFan != "":
		// Refused before it left: not sent. The page is another fan's
		// chat at this fan's address: the site's outage.
		return res, capture(page), fmt.Errorf("%w: %w: the page's send request is for another fan's chat (%s): refused before it left",
			ErrSiteDown, ErrMisrouted, ans.otherFan)
	case !answered:
		res.Outcome = Unknown
		return res, capture(page), fmt.Errorf("%w: %w: send: no answer within %s", ErrSiteDown, ErrTimeout, s.cfg.Timeouts.Response+answerGrace)
	case ans.err != nil:
		res.Outcome = Unknown
		e := classify("send", ans.err)
		if errors.Is(e, ErrTimeout) {
			return res, capture(page), fmt.Errorf("%w: %w", ErrSiteDown, e)
		}
		return res, capture(page), fmt.Errorf("%w: send request got no answer: %v", ErrSiteDown, ans.err)
	}
	res.Status, res.RetryAfter = ans.status, retryAfter(ans.headers)
	sr := s.cfg.Profile.SendRequest
	res.Foreign = !sr.OwnAnswer(ans.headers["content-type"]) || (ans.status >= 400 && ans.status < 500 && !sr.OwnRefusal(ans.body))
	switch {
	case res.Status >= 200 && res.Status < 300 && !res.Foreign:
		res.Outcome = Sent
		return res, nil, nil
	case res.Status >= 200 && res.Status < 300:
		// Not the send API's answer (SendRequest.AnswerType): whatever
		// answered may not have passed it on.
		res.Outcome = Unknown
	case res.Status >= 400 && res.Status < 500:
		res.Outcome = NotSent
	default: // 5xx (a gateway may answer after its origin committed), 3xx
		res.Outcome = Unknown
	}
	return res, capture(page), nil
}

// answerGrace is how much longer than the request's own timeout Send waits
// for the intercepted send request to finish.
const answerGrace = 2 * time.Second

// settle is how long Send waits after a send without a clean answer for
// the page's own further send requests (counted, refused).
const settle = 300 * time.Millisecond

// answer is what the site said to the one send request let through.
type answer struct {
	status  int
	headers map[string]string
	body    []byte // a 4xx's only (SendRequest.RefusalField)
	err     error
	// otherFan is the path of a send request refused before it left: it
	// named another fan (SendRequest.FanInPath).
	otherFan string
}

// ErrMisrouted marks a send request refused before it left because it was
// for another fan's chat (SendRequest.FanInPath): not sent; with
// ErrSiteDown, the site's outage.
var ErrMisrouted = errors.New("send request for another fan")

// attempt is one click's send requests: the first one reaches the site,
// made by the sender; later ones are counted and refused.
type attempt struct {
	fan      string    // the message's recipient
	leaveBy  time.Time // no request leaves after it (Mark.LeaveBy)
	mu       sync.Mutex
	requests int
	// closed: the click's window ended, and no request leaves any more.
	closed bool
	// route is the request let through while it is being made; resolved
	// once it was answered to the page or aborted.
	route    playwright.Route
	resolved bool
	// aborted: the route of the request let through was ended by an
	// abort, which a crashed renderer ignores (discardContext).
	aborted bool
	leftAt  time.Time // when the request let through left (leave)
	done    chan struct{}
	ans     answer
}

// take counts a send request and reports whether it is the one let
// through.
func (a *attempt) take() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests++
	return a.requests == 1
}

// leave reports whether the request let through (r) may be made now: not
// once the window closed or past leaveBy (a page that sends long after
// its click: review 22 AD B). It keeps r for close to abort.
func (a *attempt) leave(r playwright.Route) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || time.Now().After(a.leaveBy) {
		return false
	}
	a.route, a.leftAt = r, time.Now()
	return true
}

// resolve answers the request let through with f unless close aborted it;
// aborts says f aborts it.
func (a *attempt) resolve(aborts bool, f func()) {
	a.mu.Lock()
	done := a.resolved
	a.resolved = true
	if !done && aborts {
		a.aborted = true
	}
	a.mu.Unlock()
	if !done {
		f()
	}
}

// seal closes the window if no send request was issued yet, and reports
// whether it did (nothing can leave: not sent).
func (a *attempt) seal() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.requests == 0 {
		a.closed = true
	}
	return a.closed
}

// close ends the click's window: no request of it leaves after this, and
// one still being made (Route.Fetch running) has its paused route aborted
// now, before the page can be closed: a page closed with the route paused
// let Chromium send the request itself, past the interceptor, the gate
// and the mark (review 22 AD A: one click, two copies). The sender's own
// fetch of it goes on (it may land: the late-commit horizon). It returns
// the latest moment a request of the click may have left (Result.LeftBy).
func (a *attempt) close() time.Time {
	a.mu.Lock()
	a.closed = true
	r, done, left := a.route, a.resolved, a.leftAt
	a.resolved = true
	if r != nil && !done {
		a.aborted = true
	}
	a.mu.Unlock()
	if r != nil && !done {
		_ = r.Abort("timedout")
	}
	if left.IsZero() {
		left = time.Now()
	}
	return minTime(left, a.leaveBy)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (a *attempt) issued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests
}

func (a *attempt) finish(ans answer) {
	a.mu.Lock()
	a.ans = ans
	a.mu.Unlock()
	close(a.done)
}

func (a *attempt) wait(ctx context.Context, d time.Duration) (answer, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.done:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.ans, true
	case <-t.C:
	case <-ctx.Done():
	}
	return answer{}, false
}

// arm opens page's click window: its next send request goes to the site,
// if it leaves by leaveBy.
func (s *Sender) arm(page playwright.Page, fan string, leaveBy time.Time) *attempt {
	a := &attempt{fan: fan, leaveBy: leaveBy, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed[page] = a
	return a
}

func (s *Sender) disarm(page playwright.Page) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.armed, page)
}

// StraySendRequests counts the send requests pages issued outside a click
// (refused: nothing reaches the site without the gate's admission).
func (s *Sender) StraySendRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.strays
}

// routeSend handles every request matching the profile's send request in
// a creator's context: the armed click's first request is made here, once
// (MaxRetries 0, no redirects followed); every other one is refused.
func (s *Sender) routeSend(r playwright.Route) {
	req := r.Request()
	if !strings.EqualFold(req.Method(), s.cfg.Profile.SendRequest.Method) {
		_ = r.Fallback()
		return
	}
	var a *attempt
	if f := req.Frame(); f != nil {
		if p := f.Page(); p != nil {
			s.mu.Lock()
			a = s.armed[p]
			s.mu.Unlock()
		}
	}
	if a == nil || !a.take() {
		if a == nil {
			s.mu.Lock()
			s.strays++
			s.mu.Unlock()
		}
		_ = r.Abort("blockedbyclient")
		return
	}
	if !s.cfg.Profile.SendRequest.NamesFan(req.URL(), a.fan) {
		u, _ := url.Parse(req.URL())
		other := "an unparsable URL"
		if u != nil {
			other = u.Path
		}
		a.finish(answer{otherFan: other})
		_ = r.Abort("blockedbyclient")
		return
	}
	if !a.leave(r) {
		a.finish(answer{err: errLeftTooLate})
		_ = r.Abort("timedout")
		return
	}
	resp, err := r.Fetch(playwright.RouteFetchOptions{MaxRetries: playwright.Int(0), MaxRedirects: playwright.Int(0), Timeout: ms(s.cfg.Timeouts.Response)})
	if err != nil {
		a.resolve(true, func() { _ = r.Abort("connectionfailed") })
		a.finish(answer{err: err})
		return
	}
	ans := answer{status: resp.Status(), headers: resp.Headers()}
	if ans.status >= 400 && ans.status < 500 {
		ans.body, _ = resp.Body()
	}
	// Answered to the page before the click is told, so that the click's
	// end (close) finds the route resolved.
	a.resolve(false, func() { _ = r.Fulfill(playwright.RouteFulfillOptions{Response: resp}) })
	a.finish(ans)
}

// errLeftTooLate is the answer of a send request the page issued after
// its click's window (Mark.LeaveBy): refused before it left, but its click
// is unknown all the same (another request of the page may not have been
// seen).
var errLeftTooLate = errors.New("the page's send request came after its click's window: refused before it left")
