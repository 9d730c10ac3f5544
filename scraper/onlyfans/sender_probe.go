package onlyfans

import (
	"context"
	"errors"
	"fmt"

	"github.com/playwright-community/playwright-go"
)

// ErrChatUnusable marks a chat page that cannot be used (it answers 5xx,
// shows no composer or no history, or its send button is disabled before
// anything is typed). It always comes with ErrSiteDown: only ProbeChat can
// tell one fan's broken chat from the site's outage.
var ErrChatUnusable = errors.New("chat unusable")

// sendableEmpty checks, when the profile says the site's send button is
// enabled on an empty composer, that it is: a button disabled before
// anything is typed is the page refusing every text (a read-only site, one
// fan's chat closed), never this message's text.
func (s *Sender) sendableEmpty(page playwright.Page) error {
	if !s.cfg.Profile.ProbeChat.SendEnabledEmpty {
		return nil
	}
	enabled, err := page.Locator(s.cfg.Profile.Send).First().IsEnabled(playwright.LocatorIsEnabledOptions{Timeout: ms(s.cfg.Timeouts.Action)})
	if err != nil {
		return fmt.Errorf("%w: %w: the chat page shows no send button (%s): %w", ErrSiteDown, ErrChatUnusable, s.cfg.Profile.Send, classify("open chat", err))
	}
	if !enabled {
		return fmt.Errorf("%w: %w: the send button (%s) is disabled before anything is typed", ErrSiteDown, ErrChatUnusable, s.cfg.Profile.Send)
	}
	return nil
}

// unusableOnTimeout turns a step that timed out before anything was sent
// (typing, the send button's actionability) into the chat's failure: a
// composer that stays disabled or a send button under an overlay says
// nothing about this message, and only ProbeChat tells one fan's chat
// from the whole site (review 22 G: a site-wide read-only composer, or a
// banner over every send button, dead-lettered messages as timeouts).
func unusableOnTimeout(err error, what string) error {
	if !errors.Is(err, ErrTimeout) {
		return err
	}
	return fmt.Errorf("%w: %w: %s: %w", ErrSiteDown, ErrChatUnusable, what, err)
}

// unclicked classifies a send click that failed with nothing sent. A send
// button left disabled once this text is typed is the composer refusing
// this text: the message's own failure (the timeout). One that is enabled
// and still could not be clicked in time (covered by a banner or modal,
// never stable) says nothing about the text: the chat's failure, which the
// probe decides (review 22 G).
func (s *Sender) unclicked(page playwright.Page, err error) error {
	enabled, eerr := page.Locator(s.cfg.Profile.Send).First().IsEnabled(playwright.LocatorIsEnabledOptions{Timeout: ms(s.cfg.Timeouts.Action)})
	if eerr != nil || !enabled {
		return err
	}
	return unusableOnTimeout(err, "the send button cannot be clicked")
}

// interactable checks what a send needs of a chat page, typing nothing:
// a composer that takes input (filled with the empty string, which waits
// for it to be editable, as typing does) and a send button nothing covers
// (a trial hover: visible, stable, receiving events, whether enabled or
// not, since many sites disable it while the composer is empty).
func (s *Sender) interactable(page playwright.Page) error {
	timeout := ms(s.cfg.Timeouts.Action)
	if err := page.Locator(s.cfg.Profile.Input).First().Fill("", playwright.LocatorFillOptions{Timeout: timeout}); err != nil {
		return unusableOnTimeout(classify("check the composer", err), "the composer cannot be typed into")
	}
	if err := page.Locator(s.cfg.Profile.Send).First().Hover(playwright.LocatorHoverOptions{Trial: playwright.Bool(true), Timeout: timeout}); err != nil {
		return unusableOnTimeout(classify("check the send button", err), "the send button cannot be clicked")
	}
	return nil
}

// ProbeChat opens the profile's probe chat (Profile.ProbeChat) as creator
// the way a send opens a chat, reads its history and types nothing: nil
// says the site's chats work, so a chat of fan that cannot be used is that
// fan's fault. Any other answer (no probe chat, the probe chat is fan's,
// the probe chat cannot be used either) is ErrSiteDown, without
// ErrChatUnusable: the site cannot send.
func (s *Sender) ProbeChat(ctx context.Context, creator string, creds Credentials, fan string) error {
	probe := s.cfg.Profile.ProbeChat.Fan
	if probe == "" || probe == fan {
		return fmt.Errorf("%w: no probe chat other than this fan's (profile probeChat.fan %q)", ErrSiteDown, probe)
	}
	if err := s.usable(ctx, creator, creds, probe); err != nil {
		// %v: the probe's error must not carry ErrChatUnusable.
		return fmt.Errorf("%w: the probe chat cannot be used either: %v", ErrSiteDown, err)
	}
	return nil
}

// CheckChat opens fan's own chat again the way a send opens it, reads its
// history and types nothing, after the probe chat worked: a fan's chat
// counts as broken only if its fault persists. nil: it works now (the
// fault passed). ErrChatUnusable (with ErrSiteDown): it is still broken the
// same way. Any other error (a gateway's answer, the site unreachable, a
// 401 or 429, or the login page: ErrSiteDown without ErrChatUnusable)
// says the site, not the fan, failed this time, or that the next send
// will tell.
func (s *Sender) CheckChat(ctx context.Context, creator string, creds Credentials, fan string) error {
	err := s.usable(ctx, creator, creds, fan)
	if err == nil || errors.Is(err, ErrChatUnusable) || errors.Is(err, ErrSiteDown) || errors.Is(err, ErrBrowserDown) {
		return err
	}
	return fmt.Errorf("%w: the fan's chat, opened again: %v", ErrSiteDown, err)
}

// usable opens fan's chat as creator, checks its composer and send button
// (sendableEmpty, interactable) and reads its history, typing nothing; an
// answer with a check of its own (401, 429, the login page) is an error
// without ErrChatUnusable; a session-check status (asked with a session
// that checked good) is one with it.
func (s *Sender) usable(ctx context.Context, creator string, creds Credentials, fan string) (err error) {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	c, err := s.lend(creator, creds)
	if err != nil {
		return err
	}
	defer func() { s.giveBack(c, err == nil) }()
	early, err := s.openChat(c, fan)
	switch {
	case err == nil && early != nil && !early.LoginPage && s.cfg.Profile.SessionCheck.Ambiguous(early.Status):
		// Asked after the session checked good (the processor's
		// chatRefused): a chat the site refuses is an unusable one, so
		// one fan's refusal persists and ripens (review 22 K).
		err = fmt.Errorf("%w: %w: chat page answered %d", ErrSiteDown, ErrChatUnusable, early.Status)
	case err == nil && early != nil:
		err = fmt.Errorf("%w: chat page answered %d", ErrSiteDown, early.Status)
	}
	if err == nil {
		err = s.sendableEmpty(c.page)
	}
	if err == nil {
		err = s.interactable(c.page)
	}
	if err == nil {
		_, _, err = s.history(c.page)
	}
	return err
}
