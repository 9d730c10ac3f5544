// Fixtures of issue 22's third review shared by its tests behind the
// reviewfindings tag and those fixed.

package scraper_test

import (
	"net/http"
	"net/http/httptest"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/test/harness"
)

// behindGate is behind with a gate of gateCfg (its fence primed by
// setupWithGate).
func (f *fixture) behindGate(cfg scraper.Config, gateCfg ratelimit.Config, front func(http.Handler) http.Handler) {
	f.t.Helper()
	f.behindWithGate(cfg, front, browser.Options{DriverDir: harness.DriverDir(f.t)}, gateCfg)
}

// brokenChatFor serves one fan's chat page broken (the way fix wants) and
// every other page as the origin does.
func brokenChatFor(fan string, fix func(w http.ResponseWriter, html string)) func(http.Handler) http.Handler {
	return func(origin http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/my/chats/chat/"+fan {
				origin.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			origin.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				if k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			fix(w, rec.Body.String())
		})
	}
}
