// Package handler is the HTTP API of the pipeline: send messages, check the
// queues' health, replay the fallback table. It is a plain http.Handler: the
// Lambda wraps it with the API Gateway adapter, the local server serves it
// directly, and tests call it with httptest.
package handler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/auth"
	"github.com/huntaze/message-pipeline/internal/enqueue"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/featureflag"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/quota"
)

// Routes.
const (
	PathSend   = "/api/onlyfans/messages/send"
	PathStatus = "/api/onlyfans/messages/status"
	PathReplay = "/api/onlyfans/messages/replay"
)

// Metric names (seed 000 R5).
const (
	MetricQueued        = "messages_queued"
	MetricSendFailures  = "queue_send_failures"
	MetricFallback      = "fallback_stored"
	MetricReplayed      = "messages_replayed"
	MetricReplayFailed  = "replay_failures"
	MetricRequestErrors = "request_rejected"
	// MetricFallbackJoined counts messages stored behind their creator's
	// messages waiting in the fallback table (SQS was not at fault).
	MetricFallbackJoined = "fallback_joined"
	// MetricQuotaUnavailable counts backpressure checks skipped because
	// the quota store did not answer (the only case a cap is not applied).
	MetricQuotaUnavailable = "quota_unavailable"
	// MetricOrderUnknown counts messages refused (503) because their
	// creator's fallback backlog could not be read.
	MetricOrderUnknown = "order_state_unavailable"
	// MetricQueueDepth is a queue's messages, dimension Queue (intake,
	// intake-dlq, workflows, workflows-dlq).
	MetricQueueDepth = "queue_depth"
)

// MaxBodyBytes bounds a request: 10 messages at the SQS limit plus JSON overhead.
const MaxBodyBytes = MaxBatch*message.MaxSQSMessageBytes + 64*1024

// QueueURLs are the queues the status endpoint reports on.
type QueueURLs struct {
	RateLimiter, RateLimiterDLQ, Workflows, WorkflowsDLQ string
}

// Config of the server.
type Config struct {
	Queues QueueURLs
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
type QueueStatsAPI interface {
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
}

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
	mux *http.ServeMux
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
	s := &Server{cfg: cfg, d: d, mux: http.NewServeMux()}
	s.mux.HandleFunc("POST "+PathSend, s.authenticated(s.send))
	s.mux.HandleFunc("GET "+PathStatus, s.authenticated(s.status))
	s.mux.HandleFunc("POST "+PathReplay, s.authenticated(s.replay))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type principalKey struct{}

func (s *Server) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.d.Auth.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			s.d.Log.Info("request refused", "path", r.URL.Path, "status", http.StatusUnauthorized, "error", err)
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

// Result is the outcome of one message.
type Result struct {
	MessageID string `json:"messageId"`
	Status    string `json:"status"` // queued | stored_for_replay | failed
	Error     string `json:"error,omitempty"`
}

// Result statuses.
const (
	StatusQueued          = "queued"
	StatusStoredForReplay = "stored_for_replay"
	StatusFailed          = "failed"
)

type batchResponse struct {
	Results []Result `json:"results"`
}

// refusal is an answer that ends a send request early.
type refusal struct {
	code       int
	body       errorBody
	retryAfter string // Retry-After header, when set
}

func refuse(code int, body errorBody) *refusal { return &refusal{code: code, body: body} }

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	start := s.d.Now()
	m := metrics.NewSet()
	defer func() { _ = s.d.Metrics.Emit(m) }()
	reject := func(rf *refusal) {
		m.Add(MetricRequestErrors, metrics.Count, 1)
		s.d.Log.Info("send refused", "status", rf.code, "error", rf.body.Error, "fields", rf.body.Fields)
		if rf.retryAfter != "" {
			w.Header().Set("Retry-After", rf.retryAfter)
		}
		writeJSON(w, rf.code, rf.body)
	}
	body, drafts, batch, rf := s.readRequest(w, r)
	if rf != nil {
		reject(rf)
		return
	}
	p := principal(r)
	if rf := s.authorize(r.Context(), p, drafts, batch); rf != nil {
		reject(rf)
		return
	}
	claim, rf := s.claim(r, p.Subject, body, len(drafts))
	if rf != nil {
		reject(rf)
		return
	}
	if claim.replay != nil {
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(claim.replay.StatusCode)
		_, _ = io.WriteString(w, claim.replay.Response)
		return
	}
	msgs, rf := s.messages(drafts, batch, p.Subject, claim)
	if rf != nil {
		if claim.key != "" {
			_ = s.d.Idempotency.Abandon(r.Context(), claim.key)
		}
		reject(rf)
		return
	}
	// A retry of a keyed request sends only what the earlier attempt did not
	// queue or store.
	outcomes := make([]string, len(msgs))
	if claim.rec != nil && len(claim.rec.Outcomes) == len(msgs) {
		copy(outcomes, claim.rec.Outcomes)
	}
	if rf := s.creatorBackpressure(r.Context(), msgs, outcomes, m); rf != nil {
		s.releaseClaim(r.Context(), claim.key, outcomes)
		reject(rf)
		return
	}
	code, out, failed := s.sendAll(r.Context(), msgs, outcomes, batch, m, start)
	if claim.key != "" {
		if failed {
			// Never keep an answer holding a failure: the retry the client
			// is told to make sends exactly the missing messages, same ids.
			s.releaseClaim(r.Context(), claim.key, outcomes)
		} else if err := s.d.Idempotency.Complete(r.Context(), claim.key, code, out); err != nil {
			s.d.Log.Warn("idempotency answer not stored", "error", err)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(out)
}

// readRequest checks the content type and size and decodes the body.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request) ([]byte, []Draft, bool, *refusal) {
	if s.cfg.Unavailable != "" {
		return nil, nil, false, refuse(http.StatusServiceUnavailable, errorBody{Error: "rate limiting is unavailable: " + s.cfg.Unavailable})
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, nil, false, refuse(http.StatusUnsupportedMediaType, errorBody{Error: "Content-Type must be application/json"})
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, nil, false, refuse(http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body exceeds %d bytes", MaxBodyBytes)})
	}
	if err != nil {
		return nil, nil, false, refuse(http.StatusBadRequest, errorBody{Error: "cannot read body: " + err.Error()})
	}
	drafts, batch, err := DecodeRequest(body)
	var re *RequestError
	if errors.As(err, &re) {
		return nil, nil, false, refuse(http.StatusBadRequest, errorBody{Error: "invalid request", Fields: re.Fields})
	}
	return body, drafts, batch, nil
}

// authorize applies the caller's request quota and the tenancy rules: a
// token sends as itself, as the creators its grant claim lists, or
// (service scope) as anyone.
func (s *Server) authorize(ctx context.Context, p auth.Principal, drafts []Draft, batch bool) *refusal {
	user := p.Subject
	if s.d.Quota != nil {
		ok, retry, err := s.d.Quota.Count(ctx, "caller#"+user, 1, s.cfg.CallerRequests, s.cfg.CallerWindow)
		if err != nil {
			// Backpressure protects; a store outage never stops the
			// pipeline: the cap is skipped, logged and counted.
			_ = s.d.Metrics.Emit(quotaUnavailable())
			s.d.Log.Warn("caller quota unavailable; not enforced", "user_id", user, "error", err)
		} else if !ok {
			return &refusal{code: http.StatusTooManyRequests, retryAfter: retryAfter(retry), body: errorBody{Error: fmt.Sprintf("more than %d requests per %s from this caller; retry later", s.cfg.CallerRequests, s.cfg.CallerWindow)}}
		}
	}
	for i, d := range drafts {
		field := func(name string) string {
			if batch {
				return fmt.Sprintf("messages[%d].%s", i, name)
			}
			return name
		}
		if d.UserID != "" && d.UserID != user {
			return refuse(http.StatusForbidden, errorBody{Error: "userId must be the token subject", Fields: []message.FieldError{{Field: field("userId"), Reason: "differs from the authenticated user"}}})
		}
		if d.CreatorID != "" && d.CreatorID != user && !p.HasScope(s.cfg.ServiceScope) && !slices.Contains(p.Creators, d.CreatorID) {
			s.d.Log.Warn("send as a creator not granted", "user_id", user, "creator_id", message.Clip(d.CreatorID, 128))
			return refuse(http.StatusForbidden, errorBody{Error: "this token may not send as that creator", Fields: []message.FieldError{{Field: field("creatorId"), Reason: "not granted to this token (claim lists the creators it may send as)"}}})
		}
	}
	return nil
}

// idempotencyClaim is what the Idempotency-Key gives a request: its record
// (message ids, timestamp, earlier outcomes), or the stored answer to replay.
type idempotencyClaim struct {
	key       string // "" without Idempotency-Key
	rec       *idempotency.Record
	replay    *idempotency.Record
	timestamp time.Time
}

func (s *Server) claim(r *http.Request, user string, body []byte, n int) (idempotencyClaim, *refusal) {
	c := idempotencyClaim{timestamp: s.d.Now().UTC()}
	key := strings.TrimSpace(r.Header.Get("Idempotency-Key"))
	if key == "" {
		return c, nil
	}
	if len(key) > 255 {
		return c, refuse(http.StatusBadRequest, errorBody{Error: "invalid request", Fields: []message.FieldError{{Field: "Idempotency-Key", Reason: "must be at most 255 characters"}}})
	}
	c.key = user + "\x00" + key
	rec, claimed, err := s.d.Idempotency.Begin(r.Context(), c.key, idempotency.Hash(body), s.cfg.IdempotencyStale, n)
	switch {
	case errors.Is(err, idempotency.ErrMismatch):
		return c, refuse(http.StatusUnprocessableEntity, errorBody{Error: err.Error()})
	case errors.Is(err, idempotency.ErrInProgress):
		return c, &refusal{code: http.StatusConflict, retryAfter: "1", body: errorBody{Error: err.Error()}}
	case err != nil:
		s.d.Log.Error("idempotency store unavailable", "error", err)
		return c, refuse(http.StatusServiceUnavailable, errorBody{Error: "cannot honour Idempotency-Key now; retry later"})
	case !claimed:
		c.replay = rec
		return c, nil
	}
	c.rec, c.timestamp = rec, rec.CreatedAt.UTC()
	return c, nil
}

// messages builds and validates the messages, with the ids of the claim's
// record when it has them.
func (s *Server) messages(drafts []Draft, batch bool, user string, c idempotencyClaim) ([]message.Message, *refusal) {
	msgs := make([]message.Message, len(drafts))
	var fields []message.FieldError
	tooLarge := false
	for i, d := range drafts {
		id := ""
		if c.rec != nil && i < len(c.rec.MessageIDs) {
			id = c.rec.MessageIDs[i]
		} else {
			var err error
			if id, err = message.NewID(); err != nil {
				return nil, refuse(http.StatusInternalServerError, errorBody{Error: "cannot generate a message id"})
			}
		}
		msgs[i] = message.Message{
			MessageID: id, UserID: user, CreatorID: d.CreatorID, RecipientID: d.RecipientID, Content: d.Content,
			Timestamp: c.timestamp, MediaURLs: d.MediaURLs, Metadata: d.Metadata, Priority: d.Priority,
		}
		var errs []message.FieldError
		var verr *message.ValidationError
		if err := msgs[i].Validate(); errors.As(err, &verr) {
			tooLarge = tooLarge || errors.Is(err, message.ErrTooLarge)
			errs = verr.Fields
		}
		if len(d.MediaURLs) > 0 {
			errs = append(errs, message.FieldError{Field: "mediaUrls", Reason: message.MediaUnsupported})
		}
		for _, f := range errs {
			if batch {
				f.Field = fmt.Sprintf("messages[%d].%s", i, f.Field)
			}
			fields = append(fields, f)
		}
	}
	if len(fields) == 0 {
		return msgs, nil
	}
	code := http.StatusBadRequest
	if tooLarge {
		code = http.StatusRequestEntityTooLarge
	}
	return nil, refuse(code, errorBody{Error: "invalid message", Fields: fields})
}

func (s *Server) releaseClaim(ctx context.Context, key string, outcomes []string) {
	if key == "" {
		return
	}
	if err := s.d.Idempotency.Release(ctx, key, outcomes); err != nil {
		s.d.Log.Warn("idempotency progress not stored", "error", err)
	}
}

// sendAll queues (or stores) the messages without an outcome yet, records
// the new outcomes and returns the answer: 202, or 500 when one was stored
// for replay, or 503 when one was neither (failed reports that).
func (s *Server) sendAll(ctx context.Context, msgs []message.Message, outcomes []string, batch bool, m *metrics.Set, start time.Time) (code int, out []byte, failed bool) {
	var todo []message.Message
	var todoIdx []int
	results := make([]Result, len(msgs))
	for i := range msgs {
		if outcomes[i] != "" {
			results[i] = resultOf(msgs[i].MessageID, outcomes[i])
			continue
		}
		todo, todoIdx = append(todo, msgs[i]), append(todoIdx, i)
	}
	var enqueued []Result
	if len(todo) > 0 {
		creators := make([]string, 0, len(todo))
		for _, msg := range todo {
			creators = append(creators, msg.CreatorKey())
		}
		// The one DynamoDB call this adds to a send: may these creators'
		// messages go to SQS, or do earlier ones wait in the fallback table?
		if backlogs, err := s.d.Fallback.Backlogs(ctx, creators); err != nil {
			// Sending blind could overtake them: refuse (nothing accepted).
			s.d.Log.Error("creators' fallback backlog unreadable; nothing sent", "creators", creators, "error", err)
			m.Add(MetricOrderUnknown, metrics.Count, float64(len(todo)))
			for _, msg := range todo {
				enqueued = append(enqueued, Result{MessageID: msg.MessageID, Status: StatusFailed, Error: errOrderUnknown})
			}
		} else {
			enqueued = s.enqueue(ctx, todo, backlogs, m, start)
		}
	}
	for j, res := range enqueued {
		results[todoIdx[j]] = res
		if res.Status != StatusFailed {
			outcomes[todoIdx[j]] = res.Status
		}
	}
	code = http.StatusAccepted
	for _, res := range results {
		switch {
		case res.Status == StatusStoredForReplay && res.Error == errJoinedReplay:
			// SQS did not fail: accepted, in order, behind the creator's
			// waiting messages.
		case res.Status == StatusStoredForReplay:
			code = http.StatusInternalServerError
		case res.Status == StatusFailed:
			failed = true
			if code != http.StatusInternalServerError {
				code = http.StatusServiceUnavailable
			}
		}
	}
	var resp any = batchResponse{Results: results}
	if !batch {
		resp = results[0]
	}
	out, _ = json.Marshal(resp) // plain structs of strings always encode
	return code, out, failed
}

// creatorBackpressure takes one unit per message still to send from each
// creator's waiting quota. A request holding more messages for one creator
// than the cap is refused with 413 naming the cap (it could never fit); a
// creator over its cap gets 429 with Retry-After. Only a quota store that
// does not answer skips the check, logged and counted (MetricQuotaUnavailable).
// Units already taken for other creators stay taken (they only err on the
// side of refusing sooner).
func (s *Server) creatorBackpressure(ctx context.Context, msgs []message.Message, outcomes []string, m *metrics.Set) *refusal {
	counts := map[string]int{}
	var order []string
	for i, msg := range msgs {
		if outcomes[i] != "" {
			continue
		}
		if counts[msg.CreatorKey()] == 0 {
			order = append(order, msg.CreatorKey())
		}
		counts[msg.CreatorKey()]++
	}
	tooMany := func(c string) *refusal {
		return refuse(http.StatusRequestEntityTooLarge, errorBody{
			Error:  fmt.Sprintf("the request holds %d messages for creator %s; CREATOR_WAITING_CAP allows %d waiting per creator: send fewer per request", counts[c], c, s.cfg.CreatorWaiting),
			Fields: []message.FieldError{{Field: "messages", Reason: fmt.Sprintf("more messages for one creator than CREATOR_WAITING_CAP (%d)", s.cfg.CreatorWaiting)}}})
	}
	for _, c := range order {
		if counts[c] > s.cfg.CreatorWaiting {
			return tooMany(c)
		}
	}
	if s.d.Quota == nil {
		return nil
	}
	for _, c := range order {
		ok, retry, err := s.d.Quota.Take(ctx, "creator#"+c, counts[c], quota.Rule{Interval: s.cfg.CreatorDrain, Burst: s.cfg.CreatorWaiting})
		switch {
		case errors.Is(err, quota.ErrExceedsBurst):
			return tooMany(c)
		case err != nil:
			m.Add(MetricQuotaUnavailable, metrics.Count, 1)
			s.d.Log.Warn("creator quota unavailable; not enforced", "creator_id", c, "error", err)
		case !ok:
			return &refusal{code: http.StatusTooManyRequests, retryAfter: retryAfter(retry), body: errorBody{
				Error:  fmt.Sprintf("creator %s has about %d messages waiting (CREATOR_WAITING_CAP); retry later", c, s.cfg.CreatorWaiting),
				Fields: []message.FieldError{{Field: "creatorId", Reason: "too many messages waiting for this creator"}}}}
		}
	}
	return nil
}

func quotaUnavailable() *metrics.Set {
	m := metrics.NewSet()
	m.Add(MetricQuotaUnavailable, metrics.Count, 1)
	return m
}

// retryAfter formats a Retry-After header: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(max(1, math.Ceil(d.Seconds()))))
}

// Texts of the per-message errors.
const (
	errStoredForReplay = "the queue is unavailable; the message was stored and will be replayed"
	errNothingStored   = "the queue and the fallback store are unavailable; nothing was stored, retry later"
	errJoinedReplay    = "earlier messages of this creator wait in the fallback table; this one was stored behind them and will be replayed in order"
	errOrderUnknown    = "cannot read whether this creator has messages waiting in the fallback table; nothing was sent, retry later"
)

func resultOf(id, status string) Result {
	r := Result{MessageID: id, Status: status}
	if status == StatusStoredForReplay {
		r.Error = errStoredForReplay
	}
	return r
}

// enqueue queues msgs in their creators' order and stores in the fallback
// table every message that may not or could not be queued:
//   - a creator with messages waiting in the fallback table (backlogs) has
//     all its new messages stored behind them, so none overtakes them; the
//     answer is 202 with stored_for_replay;
//   - a message SQS refused after its retries is stored with every later
//     message of its creator in the request (enqueue.Send never queues
//     those: ErrNotSent); the answer is 500 with stored_for_replay.
//
// Each creator's stored messages get consecutive acceptance sequences from
// one Reserve before any is stored, and are stored in order; the first that
// cannot be stored fails with every later one of its creator (503: nothing
// accepted, the client retries them in order).
func (s *Server) enqueue(ctx context.Context, msgs []message.Message, backlogs map[string]fallback.Backlog, m *metrics.Set, start time.Time) []Result {
	results := make([]Result, len(msgs))
	sendErrs := make([]error, len(msgs))
	joined := make([]bool, len(msgs))
	var direct []message.Message
	var directIdx []int
	for i, msg := range msgs {
		if backlogs[msg.CreatorKey()].Waiting() {
			joined[i] = true
			continue
		}
		direct, directIdx = append(direct, msg), append(directIdx, i)
	}
	for j, err := range s.d.Sender.Send(ctx, direct) {
		sendErrs[directIdx[j]] = err
	}
	// What goes to the fallback table, per creator in request order.
	var creators []string
	store := map[string][]int{}
	for i, msg := range msgs {
		if !joined[i] && sendErrs[i] == nil {
			results[i] = Result{MessageID: msg.MessageID, Status: StatusQueued}
			m.Add(MetricQueued, metrics.Count, 1)
			continue
		}
		if sendErrs[i] != nil {
			m.Add(MetricSendFailures, metrics.Count, 1)
		}
		c := msg.CreatorKey()
		if store[c] == nil {
			creators = append(creators, c)
		}
		store[c] = append(store[c], i)
	}
	for _, c := range creators {
		idx := store[c]
		first, rerr := s.d.Fallback.Reserve(ctx, c, len(idx))
		var storeErr error = rerr
		for k, i := range idx {
			msg := msgs[i]
			if storeErr == nil {
				attempts := 0
				var ee *enqueue.Error
				if errors.As(sendErrs[i], &ee) {
					attempts = ee.Attempts
				}
				body, _ := msg.Marshal() // validated messages always encode
				lastErr := sendErrs[i]
				if joined[i] {
					lastErr = errors.New("queued behind this creator's messages waiting in the fallback table")
				}
				ferr := s.d.Fallback.Put(ctx, msg.MessageID, c, first+int64(k), string(body), msg.Attributes().Strings(), attempts, lastErr)
				if ferr != nil && !errors.Is(ferr, fallback.ErrExists) {
					storeErr = ferr
				}
			}
			switch {
			case storeErr != nil:
				results[i] = Result{MessageID: msg.MessageID, Status: StatusFailed, Error: errNothingStored}
				s.d.Log.Error("message neither queued nor stored", "message_id", msg.MessageID, "creator_id", c, "send_error", errString(sendErrs[i]), "store_error", storeErr)
			case joined[i]:
				results[i] = Result{MessageID: msg.MessageID, Status: StatusStoredForReplay, Error: errJoinedReplay}
				m.Add(MetricFallbackJoined, metrics.Count, 1)
			default:
				results[i] = resultOf(msg.MessageID, StatusStoredForReplay)
				m.Add(MetricFallback, metrics.Count, 1)
			}
		}
	}
	for i, msg := range msgs {
		level := slog.LevelInfo
		if results[i].Status == StatusFailed || sendErrs[i] != nil {
			level = slog.LevelError
		}
		s.d.Log.Log(ctx, level, "message send", "message_id", msg.MessageID, "creator_id", msg.CreatorKey(),
			"timestamp", msg.Timestamp.Format(time.RFC3339Nano), "outcome", results[i].Status, "behind_fallback", joined[i],
			"latency_ms", s.d.Now().Sub(start).Milliseconds(), "error", errString(sendErrs[i]))
	}
	return results
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// QueueStatus is one queue's depth.
type QueueStatus struct {
	Name      string `json:"name"`
	Visible   int    `json:"visible"`
	InFlight  int    `json:"inFlight"`
	Delayed   int    `json:"delayed"`
	Reachable bool   `json:"reachable"`
	// DeadLetter marks a dead-letter queue (not part of the response).
	DeadLetter bool `json:"-"`
}

// StatusResponse is the health report (seed 000 R5.3).
type StatusResponse struct {
	Healthy            bool          `json:"healthy"`
	Reasons            []string      `json:"reasons,omitempty"`
	RateLimiterEnabled bool          `json:"rateLimiterEnabled"`
	FlagSource         string        `json:"flagSource"`
	Queues             []QueueStatus `json:"queues"`
	FallbackPending    int           `json:"fallbackPending"`
	Redis              string        `json:"redis"` // ok | unreachable | not configured
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	// Queue names and depths are operators' business.
	if p := principal(r); !p.HasScope(s.cfg.AdminScope) && !p.HasScope(s.cfg.OpsScope) {
		writeJSON(w, http.StatusForbidden, errorBody{Error: "status needs the " + s.cfg.AdminScope + " or " + s.cfg.OpsScope + " scope"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	st := StatusResponse{Redis: "not configured"}
	st.RateLimiterEnabled, st.FlagSource = s.d.Flag.Enabled(ctx)
	if s.cfg.Unavailable != "" {
		st.Reasons = append(st.Reasons, "sending unavailable: "+s.cfg.Unavailable)
	} else {
		for _, qs := range QueueDepths(ctx, s.d, s.cfg.Queues) {
			st.Queues = append(st.Queues, qs)
			switch {
			case !qs.Reachable:
				st.Reasons = append(st.Reasons, "queue "+qs.Name+" unreachable")
			case qs.DeadLetter && qs.Visible+qs.InFlight+qs.Delayed > 0:
				st.Reasons = append(st.Reasons, fmt.Sprintf("dead-letter queue %s holds %d messages", qs.Name, qs.Visible+qs.InFlight+qs.Delayed))
			}
		}
		n, err := s.d.Fallback.PendingCount(ctx)
		st.FallbackPending = n
		if err != nil {
			st.Reasons = append(st.Reasons, "fallback table unreachable")
		} else if n > 0 {
			st.Reasons = append(st.Reasons, fmt.Sprintf("%d messages wait in the fallback table for replay", n))
		}
	}
	if s.d.Redis != nil {
		st.Redis = "ok"
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		if err := s.d.Redis(pctx); err != nil {
			st.Redis = "unreachable"
			st.Reasons = append(st.Reasons, "redis unreachable: "+err.Error())
		}
		pcancel()
	}
	st.Healthy = len(st.Reasons) == 0
	code := http.StatusOK
	if !st.Healthy {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

// QueueDepths reads every queue of the pipeline and publishes its depth
// (visible + in flight + delayed) as MetricQueueDepth with dimension Queue
// (seed 000 R5.5): the status path and the scheduled replay both call it,
// so the metric has a point at least every 5 minutes.
func QueueDepths(ctx context.Context, d Deps, q QueueURLs) []QueueStatus {
	var out []QueueStatus
	for _, qu := range []struct {
		name, url string
		dlq       bool
	}{{"intake", q.RateLimiter, false}, {"intake-dlq", q.RateLimiterDLQ, true}, {"workflows", q.Workflows, false}, {"workflows-dlq", q.WorkflowsDLQ, true}} {
		if qu.url == "" {
			continue
		}
		qs := queueStatus(ctx, d, qu.url)
		qs.DeadLetter = qu.dlq
		out = append(out, qs)
		if qs.Reachable && d.Metrics != nil {
			m := metrics.NewSet()
			m.Put(MetricQueueDepth, metrics.Count, float64(qs.Visible+qs.InFlight+qs.Delayed))
			_ = d.Metrics.With(map[string]string{"Queue": qu.name}).Emit(m)
		}
	}
	return out
}

func queueStatus(ctx context.Context, d Deps, url string) QueueStatus {
	qs := QueueStatus{Name: url[strings.LastIndexByte(url, '/')+1:]}
	out, err := d.QueueStats.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		d.Log.Warn("queue attributes unreadable", "queue", qs.Name, "error", err)
		return qs
	}
	qs.Reachable = true
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], &qs.Visible)
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)], &qs.InFlight)
	fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)], &qs.Delayed)
	return qs
}

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	if !principal(r).HasScope(s.cfg.AdminScope) {
		writeJSON(w, http.StatusForbidden, errorBody{Error: "replay needs the " + s.cfg.AdminScope + " scope"})
		return
	}
	if s.cfg.Unavailable != "" {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "rate limiting is unavailable: " + s.cfg.Unavailable})
		return
	}
	res, err := Replay(r.Context(), s.d, s.cfg.ReplayBatch)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"replayed": res.Replayed, "failed": res.Failed, "skipped": res.Skipped})
}

// Replay moves waiting fallback items to the intake queue, each creator's
// in acceptance order (fallback.Store.Replay).
// The scheduled replay Lambda and `make replay` call it too.
func Replay(ctx context.Context, d Deps, limit int) (fallback.ReplayResult, error) {
	m := metrics.NewSet()
	defer func() { _ = d.Metrics.Emit(m) }()
	res, err := d.Fallback.Replay(ctx, func(ctx context.Context, it fallback.Item) error {
		msg, err := message.Parse([]byte(it.Payload))
		if err != nil {
			return fmt.Errorf("stored payload unreadable: %w", err)
		}
		// Always the intake queue: the limiter applies the flag, so a
		// replayed message and the creator's later ones share one path.
		err = d.Sender.Send(ctx, []message.Message{msg})[0]
		d.Log.Log(ctx, logLevel(err), "fallback replay", "message_id", it.MessageID, "creator_id", it.CreatorKey, "seq", it.Seq, "attempts", it.Attempts+1, "error", errString(err))
		return err
	}, limit)
	m.Add(MetricReplayed, metrics.Count, float64(res.Replayed))
	m.Add(MetricReplayFailed, metrics.Count, float64(res.Failed))
	return res, err
}

func logLevel(err error) slog.Level {
	if err != nil {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
