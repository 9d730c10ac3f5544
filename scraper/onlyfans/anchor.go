package onlyfans

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Shown is one of the creator's messages as the open chat shows it.
type Shown struct {
	// Key is a digest of the message's text key (Profile.Text.Key): texts
	// are compared by it, and a mark that keeps it holds no text.
	Key string `json:"k"`
	// ID is the site's id of the message (Profile.HistoryID), "" when the
	// profile names none or the element has none.
	ID string `json:"id,omitempty"`
}

// MarkTail is how many of the last messages shown at a click a Mark keeps.
const MarkTail = 8

// Mark is what the fan's chat showed right before a click: enough for a
// read-back to tell later whether that click sent (Mark.Judge). It anchors
// the count: only copies of the text shown after the last message seen at
// the click can be this click's, so a chat that shows only its latest
// messages (the oldest copy scrolls out as the new one arrives) is still
// read right.
type Mark struct {
	// Identical is how many of the shown messages had this text.
	Identical int `json:"n"`
	// Count is how many of the creator's messages the chat showed.
	Count int `json:"shown"`
	// Tail is the last (up to MarkTail) of them, oldest first; the last one
	// is the anchor.
	Tail []Shown `json:"tail,omitempty"`
	// Complete: the chat showed the conversation from its first message
	// (Profile.HistoryStart), so nothing had scrolled out at the click.
	Complete bool `json:"all,omitempty"`
	// ClickedAt is when the click was made (Unix milliseconds; 0: not
	// known, a mark written before it was recorded): a request may land
	// at the site until a horizon after it.
	ClickedAt int64 `json:"at,omitempty"`
	// LeaveBy is the latest moment (Unix milliseconds) the click's send
	// request may leave the browser: the sender refuses one later, and a
	// paused one when the click's wait ends (Timeouts.LeaveWithin after
	// the mark was made). A request may land until a horizon after it
	// (review 22 AD B: a request leaving 7 s after ClickedAt was read
	// "not sent" before it could no longer land). 0: ClickedAt (a mark
	// written before it was recorded).
	LeaveBy int64 `json:"by,omitempty"`
	// Answered: the send API answered this click 2xx (sent), and only the
	// scraper's own bookkeeping of it is missing (the fan's last-sent
	// record, refused by Redis): no read-back judges it again, the proof
	// is the site's answer (review 22 M: a read-back after the chat moved
	// on could no longer find the anchor, and a sent message was
	// dead-lettered).
	Answered bool `json:"ok,omitempty"`
	// Legacy: a mark that only holds Identical (written before anchors):
	// judged by the count alone, as it was written.
	Legacy bool `json:"-"`
}

// Digest is the digest of a text key that Shown.Key holds.
func Digest(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:8])
}

// NewMark is the mark of a chat showing shown right before a click whose
// text has the digest want.
func NewMark(shown []Shown, want string) Mark {
	m := Mark{Identical: countKey(shown, want), Count: len(shown)}
	m.Tail = append([]Shown(nil), shown[max(len(shown)-MarkTail, 0):]...)
	return m
}

func countKey(shown []Shown, want string) int {
	n := 0
	for _, s := range shown {
		if s.Key == want {
			n++
		}
	}
	return n
}

// Verdict is what a read-back of an unknown click found.
type Verdict struct {
	// Outcome is Sent (a copy of the text after the anchor), NotSent (the
	// anchor is shown and no copy after it) or Unknown (the anchor is not
	// shown, or the chat cannot be lined up with the mark in one way only).
	Outcome Outcome
	// Identical is how many copies of the text the chat shows now.
	Identical int
	// Why says why the outcome is Unknown.
	Why string
	// Behind (with Unknown): the chat shows an earlier state than at the
	// click (Mark.behind): the site's read path is behind its writes.
	Behind bool
	// Empty (with Unknown): the chat shows no message at all, as it showed
	// none of the creator's at the click (Mark.judgeFromStart): not sent,
	// or a page rendering an empty history (the site's outage; review 22
	// W C, X C). The caller waits for the patience, then
	// takes it for not sent.
	Empty bool
}

// Judge reads a chat showing now against the mark, for a text with the
// digest want, not knowing whether now starts at the conversation's first
// message (JudgeChat).
func (m Mark) Judge(now []Shown, want string) Verdict { return m.JudgeChat(now, false, want) }

// JudgeChat reads a chat showing now against the mark, for a text with the
// digest want; complete says now shows the conversation from its first
// message (Profile.HistoryStart). The chat shows a contiguous run of the
// creator's latest messages, oldest first: all of them, or only the latest
// (a page that loads older ones on scroll), less any the creator deleted.
// So the messages after the anchor (the last one shown at the click) are
// all shown as long as the anchor is, and only a copy of the text among
// them can be this click's.
//
//   - The anchor carries the site's id (Profile.HistoryID): it is found by
//     id (its text must be the same too); not found → Unknown.
//   - Without ids, every way the chat can have come from the one at the
//     click is tried (Mark.linesUp): the anchor at position j, the
//     messages before it those of the click less some the creator deleted
//     and, unless complete, less the oldest ones scrolled out; or, on a
//     chat that may not be complete, the anchor scrolled out with the
//     first message shown a copy of the text (an anchor of the same text:
//     this click's copy can stand where the anchor stood). Every way must
//     give the same answer, else Unknown. A copy of this very text the
//     creator deleted is never assumed: the chat could not tell it from
//     this click's copy (docs/design.md section 8, residuals).
//   - A chat that showed nothing at the click is anchored at its start
//     (judgeFromStart): no copy is "not sent" on a chat that shows its
//     start and messages now; a chat showing nothing (with its start, or
//     on a page that never showed it) is Empty (not sent, once seen so
//     for the caller's patience).
//
// Unknown never becomes "not sent": the caller keeps the mark.
func (m Mark) JudgeChat(now []Shown, complete bool, want string) Verdict {
	v := Verdict{Identical: countKey(now, want)}
	switch {
	case m.Legacy:
		v.Outcome = decide(v.Identical - m.Identical)
		return v
	case m.Count == 0 || len(m.Tail) == 0:
		return m.judgeFromStart(now, complete, v)
	}
	anchor := m.Tail[len(m.Tail)-1]
	if anchor.ID != "" {
		return m.judgeByID(now, want, v)
	}
	seen := map[Outcome]bool{}
	for j := range now {
		if now[j].Key == anchor.Key && m.linesUp(now[:j], complete, want) {
			seen[decide(countKey(now[j+1:], want))] = true
		}
	}
	if !complete && anchor.Key == want && len(now) > 0 && now[0].Key == want {
		seen[Sent] = true
	}
	switch {
	case len(seen) == 0 && m.behind(now):
		v.Outcome, v.Why, v.Behind = Unknown, behindWhy, true
	case len(seen) == 0:
		v.Outcome, v.Why = Unknown, "the messages shown last at the click are no longer shown"
	case len(seen) > 1:
		v.Outcome, v.Why = Unknown, "the chat lines up with the messages shown at the click in ways that disagree (identical texts); a profile historyId tells them apart"
	case seen[Sent]:
		v.Outcome = Sent
	default:
		v.Outcome = NotSent
	}
	return v
}

// judgeFromStart judges the mark of a chat that showed none of the
// creator's messages at the click: any copy shown now is this click's
// (Sent). A chat showing no message at all, with its start now or on a
// page that did not show its start at the click either (a page that
// never does: nothing stands where a copy scrolled out would), is Empty:
// not sent, or a page rendering an empty history, which the caller tells
// apart by time (review 22 V A: a first message whose 502 did not commit
// was dead-lettered outcome_unknown; W C and X C: read "not sent" at
// once, a page rendering an empty history after a committed 502, with or
// without its start marker, sent it twice). One showing its start and
// messages but no copy is "not sent". A chat that showed its start at the click and no
// longer does has grown past its window: the copy may have scrolled out
// (the fan replied): Unknown, as it is for a page that shows messages
// but neither a copy nor its start (review 22 U C: a first message,
// committed late, read "not sent" once the fan's replies hid it, and
// sent twice).
func (m Mark) judgeFromStart(now []Shown, complete bool, v Verdict) Verdict {
	switch {
	case v.Identical > 0:
		v.Outcome = Sent
	case len(now) == 0 && (complete || !m.Complete):
		v.Outcome, v.Why, v.Empty = Unknown, "the chat shows no message, as at the click: not sent, or a page rendering an empty history", true
	case complete:
		v.Outcome = NotSent
	case m.Complete:
		v.Outcome, v.Why = Unknown, "the chat showed its start and none of the creator's messages at the click, and no longer shows its start: the copy may have scrolled out"
	default:
		v.Outcome, v.Why = Unknown, "the chat showed none of the creator's messages at the click and shows messages but neither a copy nor its start now: the copy may have scrolled out"
	}
	return v
}

// decide is the outcome of after copies of the text after the anchor.
func decide(after int) Outcome {
	if after > 0 {
		return Sent
	}
	return NotSent
}

// judgeByID finds the anchor by the site's id.
func (m Mark) judgeByID(now []Shown, want string, v Verdict) Verdict {
	anchor := m.Tail[len(m.Tail)-1]
	for j := len(now) - 1; j >= 0; j-- {
		if now[j].ID != anchor.ID {
			continue
		}
		if now[j].Key != anchor.Key {
			v.Outcome, v.Why = Unknown, fmt.Sprintf("the message shown last at the click (id %s) shows another text now", anchor.ID)
			return v
		}
		v.Outcome = decide(countKey(now[j+1:], want))
		return v
	}
	if m.behind(now) {
		v.Outcome, v.Why, v.Behind = Unknown, behindWhy, true
		return v
	}
	v.Outcome, v.Why = Unknown, fmt.Sprintf("the message shown last at the click (id %s) is no longer shown", anchor.ID)
	return v
}

const behindWhy = "the chat shows an earlier state than at the click (it ends with a message shown before the anchor, in the click's order): the site's read path is behind its writes, or the anchor was deleted"

// behind reports whether now is an earlier state of the chat the click
// saw: ending with a message the click showed before its anchor, the
// messages before that in the same order (as far as the tail kept them),
// and, on a chat that showed its start at the click, no more of them than
// the click showed up to there (a chat showing only its latest messages
// shows as many in an earlier state: review 22 H). A read path behind the
// site's writes (a replica, a cache) shows that after a failed write; a
// creator who deleted the anchor does too, and only time tells them apart
// (the caller's patience; review 22 G: a lagging replica dead-lettered a
// message as outcome_unknown).
func (m Mark) behind(now []Shown) bool {
	if len(now) == 0 {
		return m.Count > 0
	}
	for k := len(m.Tail) - 2; k >= 0; k-- {
		// At the click, Tail[k] was the upTo-th message shown.
		upTo := m.Count - (len(m.Tail) - 1 - k)
		if (!m.Complete || len(now) <= upTo) && endsWith(now, m.Tail[:k+1]) {
			return true
		}
	}
	return false
}

// endsWith reports whether the last messages of now are the last of tail,
// as far as both go.
func endsWith(now, tail []Shown) bool {
	for i := 0; i < len(now) && i < len(tail); i++ {
		a, b := now[len(now)-1-i], tail[len(tail)-1-i]
		if a.Key != b.Key || (a.ID != "" && b.ID != "" && a.ID != b.ID) {
			return false
		}
	}
	return true
}

// linesUp reports whether prefix (what the chat shows before a message
// with the anchor's text) can be the messages shown before the anchor at
// the click: the same, oldest first, less messages the creator deleted
// (never a copy of want) and, unless complete, less the oldest ones
// scrolled out. Messages before the kept tail are known by number only.
// A chat complete at the click and not now must have scrolled one out.
func (m Mark) linesUp(prefix []Shown, complete bool, want string) bool {
	before := m.Tail[:len(m.Tail)-1]
	older := m.Count - len(m.Tail)
	olderWant := m.Identical - countKey(m.Tail, want)
	i, p := len(prefix)-1, len(before)-1
	for ; i >= 0 && p >= 0; p-- {
		switch {
		case prefix[i].Key == before[p].Key:
			i--
		case before[p].Key == want:
			return false // a copy of want gone from between shown ones
		}
	}
	if i >= 0 {
		// The rest is older than the kept tail.
		if i+1 > older || complete && countKey(prefix[:i+1], want) != olderWant {
			return false
		}
		return complete || !m.Complete || older > i+1
	}
	gone := before[:p+1]
	switch {
	case complete:
		// Nothing scrolled out: all of them were deleted.
		return countKey(gone, want) == 0 && olderWant == 0
	case m.Complete:
		return len(gone)+older > 0
	}
	return true
}
