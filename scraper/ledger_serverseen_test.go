package scraper

import (
	"testing"
	"time"
)

func TestServerSeenDatesTheLastMoveToAnotherServerOnly(t *testing.T) {
	var s serverSeen
	t0 := time.Unix(1_700_000_000, 0)
	// GIVEN a process that read from P, then S, then P again
	if got := s.saw("P", t0); !got.IsZero() {
		t.Fatalf("first sight dated a move: %s", got)
	}
	if got := s.saw("P", t0.Add(time.Second)); !got.IsZero() {
		t.Fatalf("the same server dated a move: %s", got)
	}
	if got := s.saw("S", t0.Add(2*time.Second)); !got.Equal(t0.Add(2 * time.Second)) {
		t.Fatalf("the move to S dated %s", got)
	}
	// WHEN P answers again, and then keeps answering
	back := s.saw("P", t0.Add(3*time.Second))
	later := s.saw("P", t0.Add(time.Hour))
	// THEN the move back is dated, and stays the last move
	if !back.Equal(t0.Add(3*time.Second)) || !later.Equal(back) {
		t.Fatalf("the move back dated %s, then %s", back, later)
	}
}
