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
}

// Judge reads a chat showing now against the mark, for a text with the
// digest want. The chat shows a contiguous run of the creator's latest
// messages, oldest first: all of them, or only the latest (a page that
// loads older ones on scroll). So the messages after the anchor (the last
// one shown at the click) are all shown as long as the anchor is, and only
// a copy of the text among them can be this click's.
//
//   - The anchor carries the site's id (Profile.HistoryID): it is found by
//     id (its text must be the same too); not found → Unknown.
//   - Without ids, the chat is lined up with the tail of the mark: the
//     anchor at position j, with every message before it (as far as both
//     show) the same as at the click, and the chat starting no earlier in
//     the conversation than at the click (a page shows more of the newest
//     messages, never more of the old ones). Every such position must give
//     the same answer, else Unknown (a run of identical texts can line up
//     in two ways that disagree).
//   - A chat that showed nothing at the click is anchored at its start.
//
// Unknown never becomes "not sent": the caller keeps the mark.
func (m Mark) Judge(now []Shown, want string) Verdict {
	v := Verdict{Identical: countKey(now, want)}
	decide := func(after int) Outcome {
		if after > 0 {
			return Sent
		}
		return NotSent
	}
	switch {
	case m.Legacy:
		v.Outcome = decide(v.Identical - m.Identical)
		return v
	case m.Count == 0 || len(m.Tail) == 0:
		v.Outcome = decide(v.Identical)
		return v
	}
	anchor := m.Tail[len(m.Tail)-1]
	if anchor.ID != "" {
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
		v.Outcome, v.Why = Unknown, fmt.Sprintf("the message shown last at the click (id %s) is no longer shown", anchor.ID)
		return v
	}
	seen := map[Outcome]bool{}
	for j := 0; j < min(len(now), m.Count); j++ {
		lined := true
		for k := 0; k <= j && k < len(m.Tail); k++ {
			if now[j-k].Key != m.Tail[len(m.Tail)-1-k].Key {
				lined = false
				break
			}
		}
		if lined {
			seen[decide(countKey(now[j+1:], want))] = true
		}
	}
	switch {
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
