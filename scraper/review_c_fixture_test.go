// Fixture code of issue 22's third review (moved unchanged from
// review_c_test.go).

package scraper_test

import (
	"net/http"
	"net/http/httptest"
)

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
