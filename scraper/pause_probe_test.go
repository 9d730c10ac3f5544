package scraper_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAPausedCreatorIsReprobedAndResumesWhenTheSessionChecksGoodAgain(t *testing.T) {
	t.Parallel()
	// GIVEN creator-a's chat pages showing the login page for a while (the
	// site logged its sessions out, or a front served its login page),
	// while the session itself is the same, and a re-probe every second
	cfg := testConfig()
	cfg.PauseProbeEvery = time.Second
	f := setup(t, cfg)
	var loggedOut atomic.Bool
	loggedOut.Store(true)
	f.behind(cfg, func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if loggedOut.Load() && strings.HasPrefix(r.URL.Path, "/my/chats/chat/") {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = io.WriteString(w, `<!doctype html><title>Login</title><form id="login">Log in</form>`)
				return
			}
			origin.ServeHTTP(w, r)
		})
	})
	f.compress()
	f.enqueue(f.newMessage("creator-a", "p0"), f.newMessage("creator-a", "p1"))
	f.runUntil(20*time.Second, func() bool { return strings.Contains(f.logs.String(), "session rejected by the site") })
	if !strings.Contains(f.logs.String(), "session rejected by the site") {
		t.Fatalf("never paused:\n%s", f.logs)
	}
	// WHEN the chat pages work again, the session's version unchanged
	loggedOut.Store(false)
	// THEN the re-probe lifts the pause by itself: both delivered, in
	// order, once, nothing dead-lettered
	ok := f.runUntil(40*time.Second, func() bool { return len(f.site.Texts("creator-a")) == 2 && f.queueCount(f.queues.Workflows.URL) == 0 })
	if got := strings.Join(f.site.Texts("creator-a"), ","); !ok || got != "p0,p1" || len(f.dlq()) != 0 {
		t.Fatalf("ok %t, site has %q, DLQ %d\n%s", ok, got, len(f.dlq()), f.logs)
	}
	if !strings.Contains(f.logs.String(), "checks good again; resuming") {
		t.Fatal("no resume by re-probe logged")
	}
}
