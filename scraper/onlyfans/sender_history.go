package onlyfans

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/internal/message"
)

// CountIdentical returns how many messages with msg's text (as the site
// stores it: Profile.Text) the fan's chat shows. Identical texts ("Thank
// you babe") are distinct messages, so presence alone proves nothing: an
// unknown click is judged by ReadBack. Errors as ReadBack's.
func (s *Sender) CountIdentical(ctx context.Context, creator string, creds Credentials, msg message.Message) (int, error) {
	v, err := s.ReadBack(ctx, creator, creds, msg, Mark{Legacy: true})
	return v.Identical, err
}

// ReadBack reads the fan's chat and judges against before (the Mark Send
// gave beforeClick) whether that click sent msg (Mark.Judge): a copy of
// its text after the messages shown last at the click is this click's. A
// chat the site will not show is a *StatusError (the caller tells the
// session from the fan by CheckSession); an unreachable or failing site is
// ErrSiteDown.
func (s *Sender) ReadBack(ctx context.Context, creator string, creds Credentials, msg message.Message, before Mark) (v Verdict, err error) {
	c, err := s.lend(creator, creds)
	if err != nil {
		return Verdict{}, err
	}
	defer func() { s.giveBack(c, err == nil) }()
	early, err := s.openChat(c, msg.RecipientID)
	if err != nil {
		return Verdict{}, err
	}
	if early != nil {
		return Verdict{}, &StatusError{Status: early.Status, RetryAfter: early.RetryAfter, LoginPage: early.LoginPage}
	}
	shown, complete, err := s.history(c.page)
	if err != nil {
		return Verdict{}, err
	}
	return before.JudgeChat(shown, complete, s.digest(msg.Content)), nil
}

// digest is the digest of text's key (Shown.Key).
func (s *Sender) digest(text string) string { return Digest(s.cfg.Profile.Text.Key(text)) }

// StatusError is a chat page the site refused with Status (LoginPage: it
// showed its login page).
type StatusError struct {
	Status     int
	RetryAfter time.Duration
	LoginPage  bool
}

func (e *StatusError) Error() string { return fmt.Sprintf("chat page answered %d", e.Status) }

// history reads the creator's messages in the open chat, oldest first,
// once the history is ready (Profile.HistoryReady: its marker is there and
// two reads agree): each one's text key digest (Profile.Text) and, when the
// profile names it, its id (Profile.HistoryID). The texts are read as
// rendered (innerText: a <br> is a line break, as the typed newline was),
// not as the DOM's text nodes. complete says the chat shows the
// conversation from its first message (Profile.HistoryStart).
//
// A history that never gets ready is the page's failure, not this
// message's (the site's history service down shows every chat so):
// ErrSiteDown, an outage, as a chat page without its composer is.
func (s *Sender) history(page playwright.Page) (shown []Shown, complete bool, err error) {
	ready := s.cfg.Profile.HistoryReady
	if ready.Selector != "" {
		if err := page.Locator(ready.Selector).First().WaitFor(playwright.LocatorWaitForOptions{
			State: playwright.WaitForSelectorStateAttached, Timeout: ms(s.cfg.Timeouts.Navigation),
		}); err != nil {
			return nil, false, fmt.Errorf("%w: %w: the chat's history never got ready (%s): %w", ErrSiteDown, ErrChatUnusable, ready.Selector, classify("wait for the chat's history", err))
		}
	}
	if shown, err = s.stableHistory(page, ready); err != nil {
		return nil, false, err
	}
	if sel := s.cfg.Profile.HistoryStart; sel != "" {
		n, err := page.Locator(sel).Count()
		if err != nil {
			return nil, false, classify("read the history's start", err)
		}
		complete = n > 0
	}
	return shown, complete, nil
}

// stableHistory reads the history until two reads agree.
func (s *Sender) stableHistory(page playwright.Page, ready HistoryReady) ([]Shown, error) {
	read := func() ([]Shown, error) {
		raw, err := page.Locator(s.cfg.Profile.History).EvaluateAll(
			`(els, attr) => els.map(e => [e.innerText, attr ? (e.getAttribute(attr) || "") : ""])`, s.cfg.Profile.HistoryID)
		if err != nil {
			return nil, classify("read history", err)
		}
		rows, _ := raw.([]any)
		shown := make([]Shown, 0, len(rows))
		for _, r := range rows {
			pair, _ := r.([]any)
			if len(pair) != 2 {
				return nil, fmt.Errorf("%w: read history: unexpected %T", ErrBrowser, r)
			}
			text, _ := pair[0].(string)
			id, _ := pair[1].(string)
			shown = append(shown, Shown{Key: s.digest(text), ID: id})
		}
		return shown, nil
	}
	shown, err := read()
	if err != nil {
		return nil, err
	}
	// Bounded: a history that keeps changing for longer than a step may
	// take is not read (a read taken mid-render could say "not sent").
	deadline := time.Now().Add(s.cfg.Timeouts.Action + ready.stable())
	for {
		time.Sleep(ready.stable())
		again, err := read()
		if err != nil {
			return nil, err
		}
		if slices.Equal(again, shown) {
			return shown, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: read history: it kept changing (%d messages, then %d)", ErrTimeout, len(shown), len(again))
		}
		shown = again
	}
}
