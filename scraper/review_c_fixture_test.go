// Fixtures of issue 22's third review shared by its tests behind the
// reviewfindings tag and those fixed.

package scraper_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/harness"
)

// behindGate is behind with a gate of gateCfg (its fence primed by
// setupWithGate).
func (f *fixture) behindGate(cfg scraper.Config, gateCfg ratelimit.Config, front func(http.Handler) http.Handler) {
	f.t.Helper()
	origin, _ := url.Parse(f.site.URL)
	srv := httptest.NewServer(front(httputil.NewSingleHostReverseProxy(origin)))
	f.t.Cleanup(srv.Close)
	sender := newSender(f.t, onlyfans.Config{BaseURL: srv.URL, Browser: browser.Options{DriverDir: harness.DriverDir(f.t)}, RecycleAfter: 20, Traces: true, Timeouts: fastSender})
	f.t.Cleanup(func() { _ = sender.Close() })
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	gate, err := ratelimit.New(f.redis.Client(), gateCfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.proc, err = scraper.NewProcessor(cfg, sender, gate, f.sessions, f.ledger, f.marks, f.results, log,
		metrics.New(f.emf, map[string]string{"Service": "scraper"}, time.Now), time.Now)
	if err != nil {
		f.t.Fatal(err)
	}
	f.consumer = scraper.NewConsumer(f.consumerConfig(), f.aws.SQS, f.ledger, f.proc, log)
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
