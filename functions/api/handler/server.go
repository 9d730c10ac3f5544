// Package handler is the HTTP API of the pipeline, one file per route: send
// messages (send*.go), report the queues' health (status.go), replay the
// fallback table (replay.go). It is a plain http.Handler: the Lambda wraps
// it with the API Gateway adapter, the local server serves it directly,
// and tests call it with httptest.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/huntaze/message-pipeline/internal/auth"
	"github.com/huntaze/message-pipeline/internal/enqueue"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/featureflag"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/logctx"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/queuedepth"
	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/internal/quota"
)

// Routes.
const (
	PathSend   = "/api/onlyfans/messages/send"
	PathStatus = "/api/onlyfans/messages/status"
	PathReplay = "/api/onlyfans/messages/replay"
)

// HeaderCorrelationID names the request's correlation id: taken from the
// request when valid (message.ValidCorrelationID), generated otherwise,
// and sent back on every answer. The messages of the request carry it to
// the limiter's and the scraper's logs and the scraper's results.
const HeaderCorrelationID = "X-Correlation-Id"

// Config of the server.
type Config struct {
	Queues queues.URLs
	// Unavailable, when set, is why sending is impossible (no queue URL, no
	// AWS credentials): sends answer 503 with it (seed 000 R1.2, R4.5).
	Unavailable string
	// AdminScope may replay the fallback table and read the status.
	AdminScope string
	// OpsScope may read the status.
	OpsScope string
	// ServiceScope may send as any creator (backend jobs that send for many
	// creators); every other token sends only as itself and the creators its
	// grant claim lists.
	ServiceScope   string
	IdempotencyTTL time.Duration
	// IdempotencyStale is when an unfinished keyed request may be taken over.
	IdempotencyStale time.Duration
	ReplayBatch      int
	// Backpressure (when Deps.Quota is set). CallerRequests per CallerWindow
	// per token subject; CreatorWaiting messages waiting per creator, where
	// messages drain at one per CreatorDrain (the rate limit's window/limit).
	CallerRequests int
	CallerWindow   time.Duration
	CreatorWaiting int
	CreatorDrain   time.Duration
}

// Validate reports a configuration New cannot run with. Every field comes
// from the API's settings (functions/api/setup), where the defaults are:
// nothing is filled in here. The backpressure fields matter only with a
// quota store.
func (c Config) Validate(backpressure bool) error {
	var errs []error
	if c.AdminScope == "" || c.OpsScope == "" || c.ServiceScope == "" {
		errs = append(errs, errors.New("api: admin, ops and service scopes are required"))
	}
	if c.ReplayBatch <= 0 {
		errs = append(errs, fmt.Errorf("api: replay batch must be positive, got %d", c.ReplayBatch))
	}
	if c.IdempotencyTTL <= 0 || c.IdempotencyStale <= 0 {
		errs = append(errs, errors.New("api: idempotency TTL and stale time must be positive"))
	}
	if backpressure && (c.CallerRequests <= 0 || c.CallerWindow <= 0 || c.CreatorWaiting <= 0 || c.CreatorDrain <= 0) {
		errs = append(errs, fmt.Errorf("api: backpressure needs positive caller requests, caller window, creator cap and drain, got %d, %s, %d, %s",
			c.CallerRequests, c.CallerWindow, c.CreatorWaiting, c.CreatorDrain))
	}
	return errors.Join(errs...)
}

// QueueStatsAPI reads queue attributes.
type QueueStatsAPI = queuedepth.StatsAPI

// Pinger checks Redis (nil when the API has no Redis address).
type Pinger func(ctx context.Context) error

// Deps are the server's collaborators.
type Deps struct {
	Auth        auth.Authenticator
	Sender      *enqueue.Sender
	Fallback    *fallback.Store
	Idempotency *idempotency.Store
	// Quota holds the backpressure counters (nil: no backpressure).
	Quota      *quota.Store
	Flag       *featureflag.Flag
	QueueStats QueueStatsAPI
	Redis      Pinger
	Log        *slog.Logger
	Metrics    *metrics.Emitter
	Now        func() time.Time
}

// Server is the API.
type Server struct {
	cfg Config
	d   Deps
	// log adds the request's correlation id to every line logged with its
	// context.
	log *slog.Logger
	h   http.Handler
}

// New returns the server.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Auth == nil || d.Log == nil || d.Metrics == nil || d.Now == nil || d.Flag == nil {
		return nil, errors.New("api: auth, log, metrics, clock and flag are required")
	}
	if cfg.Unavailable == "" && (d.Sender == nil || d.Fallback == nil || d.Idempotency == nil || d.QueueStats == nil) {
		return nil, errors.New("api: sender, fallback, idempotency and queue stats are required when sending is available")
	}
	if err := cfg.Validate(d.Quota != nil); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, d: d, log: logctx.Logger(d.Log)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathSend, s.authenticated(s.send))
	mux.HandleFunc("GET "+PathStatus, s.authenticated(s.status))
	mux.HandleFunc("POST "+PathReplay, s.authenticated(s.replay))
	s.h = s.correlated(mux)
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

type correlationKey struct{}

// correlated gives the request its correlation id (HeaderCorrelationID):
// the client's when valid, else a new one. An invalid one is replaced,
// never refused: tracing never costs a message.
func (s *Server) correlated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given := r.Header.Get(HeaderCorrelationID)
		id := given
		if !message.ValidCorrelationID(id) {
			id = message.NewCorrelationID()
		}
		ctx := logctx.With(context.WithValue(r.Context(), correlationKey{}, id), "correlation_id", id)
		if given != "" && given != id {
			s.log.WarnContext(ctx, "invalid "+HeaderCorrelationID+" replaced by a generated one", "given", message.Clip(given, 64))
		}
		w.Header().Set(HeaderCorrelationID, id)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// correlationID is the request's correlation id.
func correlationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

type principalKey struct{}

func (s *Server) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.d.Auth.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			s.log.InfoContext(r.Context(), "request refused", "path", r.URL.Path, "status", http.StatusUnauthorized, "error", err)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: err.Error()})
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

func principal(r *http.Request) auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(auth.Principal)
	return p
}

type errorBody struct {
	Error  string               `json:"error"`
	Fields []message.FieldError `json:"errors,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
