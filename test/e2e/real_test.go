//go:build e2ereal

package e2e

import (
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack"
	"github.com/huntaze/message-pipeline/test/local"
)

// TestRealLimit runs at OnlyFans' real limit, 10 per rolling 60 s, for a few
// minutes (make e2e-real) and reports the largest rolling-minute count per
// creator.
func TestRealLimit(t *testing.T) {
	creators := []string{"creator-a", "creator-b"}
	p := local.Start(t, local.Options{Creators: creators, Options: devstack.Options{LimiterPollers: 4, ReplayEvery: 5 * time.Second}})
	a := newAccepted()
	a.burst(t, p, creators, 25, "real")
	waitDelivered(t, p, a.total(), 6*time.Minute)
	for c, n := range p.Site.MaxInWindow(time.Minute) {
		t.Logf("creator %s: at most %d sends in any rolling minute", c, n)
		if n > 10 {
			t.Errorf("creator %s: %d sends in one rolling minute", c, n)
		}
	}
	if d := p.Site.Duplicates(); len(d) > 0 {
		t.Errorf("duplicates: %v", d)
	}
	checkOrder(t, p, a)
}
