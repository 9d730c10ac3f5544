// Findings of issue 25's review 25f (fresh reviewer), fixed: the tests
// keep them fixed.

package devstack_test

import (
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack"
	"github.com/huntaze/message-pipeline/infra"
)

// TestRev25FEveryBackoffOfTheScraperKeepsItsShareOfAScaledWindow checks
// issue 25's deliverable 3: "the local assembly … overrides only endpoints
// and scaled windows (margins and slacks scale with the window)", and
// devstack.Scale's own rule: "every duration the pipeline waits on purpose
// (a margin, a slack, a backoff and its cap, …) keeps its share of the
// window". What violates it: devstack.Wire (devstack/wiring.go:106-116)
// scales BackoffBase and OutageBackoff but not SERVER_BACKOFF
// (scraper/settings/settings.go:54, the in-process retry after a 5xx,
// 1 s then 2 s): at a 4 s window it stays 1 s, a quarter of the window
// instead of 1/60, so local 5xx retries take 75 % of a window where the
// stack's take 5 %.
func TestRev25FEveryBackoffOfTheScraperKeepsItsShareOfAScaledWindow(t *testing.T) {
	env, err := infra.LookupEnvironment(devstack.Environment)
	if err != nil {
		t.Fatal(err)
	}
	full := devstack.Wire(env, devstack.LocalResources(), 0, 0)
	const window = 4 * time.Second
	w := devstack.Wire(env, devstack.LocalResources(), window, 0)
	want := time.Duration(float64(full.Scraper.ServerBackoff) * float64(window) / float64(env.SendLimit.Window))
	if w.Scraper.ServerBackoff != want {
		t.Errorf("SERVER_BACKOFF at a %s window is %s, want %s (%s at %s)", window, w.Scraper.ServerBackoff, want, full.Scraper.ServerBackoff, env.SendLimit.Window)
	}
}
