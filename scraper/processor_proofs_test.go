package scraper

import (
	"fmt"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

func TestAnsweredProofsKeepEachProofUntilSettledAndDropTheOldestPastTheirBound(t *testing.T) {
	// GIVEN a full set of proofs, the first one the oldest
	var a heldProofs
	t0 := time.Unix(1_700_000_000, 0)
	for i := range maxProofs {
		a.add(fmt.Sprintf("m%d", i), onlyfans.Mark{Answered: true, Count: i}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	// WHEN one more is added, and one settled
	a.add("new", onlyfans.Mark{Answered: true, Count: -1}, t0.Add(time.Hour))
	a.drop("m1")
	// THEN the oldest went, the settled one too, the others stay as added
	if _, ok := a.get("m0"); ok {
		t.Error("the oldest proof stayed past the bound")
	}
	if _, ok := a.get("m1"); ok {
		t.Error("a settled proof stayed")
	}
	if m, ok := a.get("new"); !ok || m.Count != -1 {
		t.Errorf("the new proof: %+v %t", m, ok)
	}
	if m, ok := a.get("m2"); !ok || m.Count != 2 || !m.Answered {
		t.Errorf("an unsettled proof: %+v %t", m, ok)
	}
	if len(a.m) != maxProofs-1 {
		t.Errorf("%d proofs held, want %d", len(a.m), maxProofs-1)
	}
}
