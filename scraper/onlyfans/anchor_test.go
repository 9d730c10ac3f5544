package onlyfans_test

import (
	"context"
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/browserharness"
)

// chat is a chat of texts ("a b ok"), each text its own key; an id "#n"
// suffix gives the message an id ("a#1").
func chat(s string) []onlyfans.Shown {
	var out []onlyfans.Shown
	for _, f := range strings.Fields(s) {
		text, id, _ := strings.Cut(f, "#")
		out = append(out, onlyfans.Shown{Key: onlyfans.Digest(text), ID: id})
	}
	return out
}

func TestAChatEmptyAtTheClickIsReadNotSentOnlyWhenItShowsItsStart(t *testing.T) {
	t.Parallel()
	ok := onlyfans.Digest("ok")
	for _, c := range []struct {
		name            string
		startAtTheClick bool
		now             string
		complete        bool
		want            onlyfans.Outcome
	}{
		{"the start shown, nothing shown (Empty)", true, "", true, onlyfans.Unknown},
		{"the start shown, other texts, no copy", true, "d e", true, onlyfans.NotSent},
		{"the start shown, a copy", true, "ok", true, onlyfans.Sent},
		{"only the latest shown, a copy", false, "d ok", false, onlyfans.Sent},
		// review 22 V A: a page that never shows its start, nothing on it
		{"a page that never shows its start, nothing shown (Empty)", false, "", false, onlyfans.Unknown},
		// review 22 U C: the fan's replies scrolled the copy out
		{"the start shown at the click, not now, no copy", true, "", false, onlyfans.Unknown},
		{"the start shown at the click, not now, other texts", true, "d e f", false, onlyfans.Unknown},
		{"a page that never shows its start, other texts", false, "d e f", false, onlyfans.Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			// GIVEN the mark of a chat that showed none of the creator's messages at the click
			mark := onlyfans.NewMark(nil, ok)
			mark.Complete = c.startAtTheClick
			v := mark.JudgeChat(chat(c.now), c.complete, ok)
			// THEN "not sent" only where the chat shows it from its start
			if v.Outcome != c.want {
				t.Fatalf("%q (complete %t): outcome %d (%s), want %d", c.now, c.complete, v.Outcome, v.Why, c.want)
			}
			// AND a chat showing nothing, with its start or on a page that
			// never showed it, is Empty (the caller's patience tells not
			// sent from a page rendering an empty history: review 22 W C,
			// X C)
			if empty := c.now == "" && (c.complete || !c.startAtTheClick); v.Empty != empty {
				t.Fatalf("%q: Empty %t, want %t", c.now, v.Empty, empty)
			}
		})
	}
}

func TestAReadBackCountsOnlyCopiesAfterTheMessagesShownLastAtTheClick(t *testing.T) {
	t.Parallel()
	ok := onlyfans.Digest("ok")
	for _, c := range []struct {
		name, before, after string
		want                onlyfans.Outcome
	}{
		// A chat showing everything.
		{"all shown, sent", "a ok b", "a ok b ok", onlyfans.Sent},
		{"all shown, not sent", "a ok b", "a ok b", onlyfans.NotSent},
		{"all shown, identical last, sent", "a ok", "a ok ok", onlyfans.Sent},
		{"only identical texts shown, sent", "ok", "ok ok", onlyfans.Sent},
		{"nothing shown at the click, sent", "", "ok", onlyfans.Sent},
		{"nothing shown at the click, nothing now (a page that never shows its start): Empty", "", "", onlyfans.Unknown},
		// A chat showing its latest 3: the oldest copy scrolls out as the
		// new one arrives.
		{"latest 3, the oldest copy scrolls out, sent", "ok x y", "x y ok", onlyfans.Sent},
		{"latest 3, not sent", "ok x y", "ok x y", onlyfans.NotSent},
		{"latest 3, identical back to back, sent", "x ok ok", "ok ok ok", onlyfans.Sent},
		{"latest 3, identical back to back, not sent", "y x ok", "y x ok", onlyfans.NotSent},
		{"latest 3, more messages after ours", "a b c", "c ok d", onlyfans.Sent},
		// Can not tell: never "not sent".
		{"the anchor scrolled out", "a b c", "ok d e", onlyfans.Unknown},
		{"nothing shown at the click, no copy among the latest, the start not shown", "", "d e", onlyfans.Unknown},
		{"the anchor was deleted", "a b c", "a b ok", onlyfans.Unknown},
		{"a run of identical texts lines up two ways", "ok ok ok", "ok ok ok", onlyfans.Unknown},
		// With the site's ids, exactly.
		{"ids: the run of identical texts, not sent", "ok#1 ok#2 ok#3", "ok#1 ok#2 ok#3", onlyfans.NotSent},
		{"ids: the run of identical texts, sent, window moved", "ok#1 ok#2 ok#3", "ok#2 ok#3 ok#4", onlyfans.Sent},
		{"ids: the anchor deleted and an identical text in its place", "a#1 b#2 ok#3", "a#1 b#2 ok#4", onlyfans.Unknown},
		{"ids: another text under the anchor's id", "a#1 b#2", "a#1 c#2 ok#3", onlyfans.Unknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			// GIVEN the mark of the chat right before a click of "ok"
			mark := onlyfans.NewMark(chat(c.before), ok)
			// WHEN the chat is read back
			v := mark.Judge(chat(c.after), ok)
			// THEN the outcome is the one the chats prove, Unknown when
			// they prove nothing
			if v.Outcome != c.want {
				t.Fatalf("%q then %q: outcome %d (%s), want %d", c.before, c.after, v.Outcome, v.Why, c.want)
			}
			if v.Outcome == onlyfans.Unknown && v.Why == "" {
				t.Fatal("an Unknown verdict without its reason")
			}
		})
	}
}

func TestAChatShowingAnEarlierStateThanAtTheClickIsBehindNeverNotSent(t *testing.T) {
	t.Parallel()
	ok := onlyfans.Digest("ok")
	for _, c := range []struct {
		name, before, after string
		complete, behind    bool // complete: the click's chat showed its start
	}{
		// A read path one or two commits behind: the chat ends before the
		// anchor, in the click's order.
		{"one commit behind", "a b c", "a b", true, true},
		{"two commits behind", "a b c", "a", true, true},
		{"behind to nothing", "a b c", "", true, true},
		{"ids: one commit behind", "a#1 b#2 c#3", "a#1 b#2", true, true},
		// A chat showing its latest 3: an earlier state shows 3 too.
		{"latest 3, one commit behind", "b c d", "a b c", false, true},
		{"latest 3, ids: one commit behind", "b#2 c#3 d#4", "a#1 b#2 c#3", false, true},
		// Not an earlier state: the anchor scrolled out, another order, more
		// messages than the click showed up to there.
		{"the anchor scrolled out", "a b c", "ok d e", false, false},
		{"shorter, another order", "a b c", "b a", true, false},
		{"as many as at the click, the anchor gone", "a b c", "a b d", true, false},
		{"ids: shorter, another id", "a#1 b#2 c#3", "a#1 b#9", true, false},
		{"showing its start, more before the anchor's predecessor", "a b c", "x a b", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// GIVEN the mark of the chat right before a click of "ok"
			mark := onlyfans.NewMark(chat(c.before), ok)
			mark.Complete = c.complete
			// WHEN the chat is read back
			v := mark.JudgeChat(chat(c.after), c.complete, ok)
			// THEN an earlier state is Unknown and Behind; anything else
			// that cannot be lined up is Unknown, not Behind
			if v.Outcome != onlyfans.Unknown || v.Behind != c.behind {
				t.Fatalf("%q then %q: outcome %d behind %t (%s), want Unknown, behind %t", c.before, c.after, v.Outcome, v.Behind, v.Why, c.behind)
			}
		})
	}
}

func TestALegacyMarkIsJudgedByItsCount(t *testing.T) {
	t.Parallel()
	ok := onlyfans.Digest("ok")
	m := onlyfans.Mark{Identical: 1, Legacy: true}
	if got := m.Judge(chat("ok ok"), ok).Outcome; got != onlyfans.Sent {
		t.Fatalf("two copies after one: %d", got)
	}
	if got := m.Judge(chat("a ok"), ok).Outcome; got != onlyfans.NotSent {
		t.Fatalf("one copy after one: %d", got)
	}
}

func TestAMarkKeepsOnlyTheTailOfALongChat(t *testing.T) {
	t.Parallel()
	ok := onlyfans.Digest("ok")
	long := strings.Repeat("x y ", 50) + "a b c"
	m := onlyfans.NewMark(chat(long), ok)
	if len(m.Tail) != onlyfans.MarkTail || m.Count != 103 {
		t.Fatalf("tail %d of %d shown", len(m.Tail), m.Count)
	}
	if got := m.Judge(chat(long+" ok"), ok).Outcome; got != onlyfans.Sent {
		t.Fatalf("sent after a long chat: %d", got)
	}
	if got := m.Judge(chat(long), ok).Outcome; got != onlyfans.NotSent {
		t.Fatalf("not sent after a long chat: %d", got)
	}
}

func TestAReadBackFindsAnUnknownClickInAChatShowingOnlyItsLatestMessages(t *testing.T) {
	t.Parallel()
	for _, withIDs := range []bool{false, true} {
		t.Run(map[bool]string{false: "texts", true: "ids"}[withIDs], func(t *testing.T) {
			// GIVEN a chat page that shows its latest 3 messages, with the
			// site's ids when the profile names them (historyId), a fan who
			// already has "ok" as the oldest of them
			site := fakesite.Start(t)
			site.ShowLatest(3)
			profile := browserharness.SiteProfile()
			if withIDs {
				site.ShowMessageIDs(true)
				profile.HistoryID = "data-id"
			}
			creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-1")}
			s := newSenderFor(t, site, profile)
			ctx := context.Background()
			for _, text := range []string{"hi", "ok", "how are you", "thanks"} {
				if _, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", text), nil); err != nil {
					t.Fatal(err)
				}
			}
			// WHEN another "ok" is clicked, committed and answered 502
			// (its older copy scrolls out of the page as it arrives)
			var mark onlyfans.Mark
			site.InjectFaults(fakesite.Fault{Commit: true, Status: 502})
			ok := msg(t, "fan-1", "ok")
			res, _, err := s.Send(ctx, "creator-1", creds, ok, func(m onlyfans.Mark) error { mark = m; return nil })
			if err != nil || res.Outcome != onlyfans.Unknown {
				t.Fatalf("send: %+v, %v", res, err)
			}
			// THEN the read-back says sent, although the chat shows as many
			// copies as before the click
			v, err := s.ReadBack(ctx, "creator-1", creds, ok, mark)
			if err != nil || v.Outcome != onlyfans.Sent || v.Identical != mark.Identical {
				t.Fatalf("read back %+v, %v (mark %+v)", v, err, mark)
			}
			if withIDs && mark.Tail[len(mark.Tail)-1].ID == "" {
				t.Fatalf("the mark holds no id: %+v", mark)
			}
			// AND a click that did not commit reads back not sent
			site.InjectFaults(fakesite.Fault{Status: 502})
			again := msg(t, "fan-1", "see you")
			if _, _, err := s.Send(ctx, "creator-1", creds, again, func(m onlyfans.Mark) error { mark = m; return nil }); err != nil {
				t.Fatal(err)
			}
			if v, err := s.ReadBack(ctx, "creator-1", creds, again, mark); err != nil || v.Outcome != onlyfans.NotSent {
				t.Fatalf("uncommitted: read back %+v, %v", v, err)
			}
			// AND when the creator deletes the message shown last at the
			// click, the read-back cannot tell: Unknown, never not sent
			if _, _, err := s.Send(ctx, "creator-1", creds, msg(t, "fan-1", "bye"), nil); err != nil {
				t.Fatal(err)
			}
			site.InjectFaults(fakesite.Fault{Status: 502})
			if _, _, err := s.Send(ctx, "creator-1", creds, again, func(m onlyfans.Mark) error { mark = m; return nil }); err != nil {
				t.Fatal(err)
			}
			sent := site.Sent()
			site.DeleteSent(sent[len(sent)-1].ID)
			if v, err := s.ReadBack(ctx, "creator-1", creds, again, mark); err != nil || v.Outcome != onlyfans.Unknown || v.Why == "" {
				t.Fatalf("anchor deleted: read back %+v, %v", v, err)
			}
		})
	}
}

func TestAReadBackOfAChatShowingItsStartTellsByTheCount(t *testing.T) {
	t.Parallel()
	ok := onlyfans.Digest("ok")
	for _, c := range []struct {
		name, before, after string
		// complete: each chat showed the conversation from its first
		// message (Profile.HistoryStart)
		beforeAll, afterAll bool
		want                onlyfans.Outcome
	}{
		{"a run of identical texts, not sent", "ok ok", "ok ok", true, true, onlyfans.NotSent},
		{"a run of identical texts, sent", "ok ok", "ok ok ok", true, true, onlyfans.Sent},
		{"an older message deleted, not sent", "a b c", "a c", true, true, onlyfans.NotSent},
		{"an older message deleted, sent", "a b c", "a c ok", true, true, onlyfans.Sent},
		{"an older message deleted on a page of latest ones, not sent", "a b c", "a c", false, false, onlyfans.NotSent},
		{"the anchor deleted", "a b c", "a b", true, true, onlyfans.Unknown},
		// A copy of this text deleted as ours arrives looks like nothing
		// happened: never assumed, so never a line-up.
		{"an older copy of the text deleted", "ok x", "x ok", true, true, onlyfans.Unknown},
		// The anchor holds the text and the creator writes after ours on
		// a page of the latest 2: our copy stands where the anchor stood.
		{"the anchor's text, a message after ours, page of 2", "ok", "ok see", true, false, onlyfans.Sent},
		{"the same, not knowing where the chat started", "ok", "ok see", false, false, onlyfans.Unknown},
		{"the anchor's text, the creator wrote after it, all shown", "ok", "ok see", true, true, onlyfans.NotSent},
	} {
		t.Run(c.name, func(t *testing.T) {
			// GIVEN the mark of the chat right before a click of "ok"
			mark := onlyfans.NewMark(chat(c.before), ok)
			mark.Complete = c.beforeAll
			// WHEN the chat is read back
			v := mark.JudgeChat(chat(c.after), c.afterAll, ok)
			// THEN the outcome is the one the chats prove
			if v.Outcome != c.want {
				t.Fatalf("%q then %q: outcome %d (%s), want %d", c.before, c.after, v.Outcome, v.Why, c.want)
			}
		})
	}
}
