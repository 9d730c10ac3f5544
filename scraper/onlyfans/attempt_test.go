package onlyfans

import (
	"testing"
	"time"
)

// The click's window (attempt) is pure bookkeeping under a mutex; the
// routes it aborts are exercised with real Chromium in
// scraper/review_ad_fixed_pagecloseresend_test.go.

func TestAClicksSendRequestLeavesOnlyWithinItsWindow(t *testing.T) {
	// GIVEN a click whose window allows requests until leaveBy
	open := &attempt{leaveBy: time.Now().Add(time.Hour), done: make(chan struct{})}
	late := &attempt{leaveBy: time.Now().Add(-time.Millisecond), done: make(chan struct{})}
	closed := &attempt{leaveBy: time.Now().Add(time.Hour), done: make(chan struct{})}
	closed.close()
	// WHEN each is asked to let its request leave
	// THEN only the open one does: none leaves past leaveBy (review 22 AD
	// B) or after the window closed (AD A)
	if !open.leave(nil) {
		t.Error("a request within the window was refused")
	}
	if late.leave(nil) {
		t.Error("a request past leaveBy left")
	}
	if closed.leave(nil) {
		t.Error("a request after the window closed left")
	}
}

func TestAClosedWindowSaysWhenItsRequestLeftAtTheLatest(t *testing.T) {
	// GIVEN a click whose request left, and one whose request never came
	leaveBy := time.Now().Add(time.Hour)
	sent := &attempt{leaveBy: leaveBy, done: make(chan struct{})}
	before := time.Now()
	if !sent.leave(nil) {
		t.Fatal("refused")
	}
	none := &attempt{leaveBy: leaveBy, done: make(chan struct{})}
	// WHEN their windows close
	time.Sleep(10 * time.Millisecond)
	closing := time.Now()
	leftSent, leftNone := sent.close(), none.close()
	// THEN the first says when its request left, the second when the
	// window closed (nothing leaves after it), each at most leaveBy
	if leftSent.Before(before) || !leftSent.Before(closing) {
		t.Errorf("left by %s; the request left between %s and %s", leftSent, before, closing)
	}
	if leftNone.Before(closing) || leftNone.After(leaveBy) {
		t.Errorf("left by %s for a window closed at %s", leftNone, closing)
	}
	past := &attempt{leaveBy: closing.Add(-time.Second), done: make(chan struct{})}
	if got := past.close(); !got.Equal(past.leaveBy) {
		t.Errorf("a window closed past leaveBy says %s, want leaveBy %s", got, past.leaveBy)
	}
}

func TestAClickThatIssuedNoRequestIsSealedAndOneThatDidIsNot(t *testing.T) {
	// GIVEN a click that issued no request and one that issued one
	idle := &attempt{leaveBy: time.Now().Add(time.Hour), done: make(chan struct{})}
	busy := &attempt{leaveBy: time.Now().Add(time.Hour), done: make(chan struct{})}
	busy.take()
	// WHEN their clicks failed and the sender seals them
	// THEN the idle one is closed (not sent: nothing can leave now), the
	// busy one is not (its request is being made: unknown)
	if !idle.seal() || idle.take() && idle.leave(nil) {
		t.Error("an unissued click was not sealed: a request could still leave")
	}
	if busy.seal() {
		t.Error("a click whose request was issued was sealed as not sent")
	}
}
