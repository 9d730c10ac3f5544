package handler

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
)

// Metric names of the send route (seed 000 R5).
const (
	MetricQueued        = "messages_queued"
	MetricSendFailures  = "queue_send_failures"
	MetricFallback      = "fallback_stored"
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
)

// MaxBodyBytes bounds a request: 10 messages at the SQS limit plus JSON overhead.
const MaxBodyBytes = MaxBatch*message.MaxSQSMessageBytes + 64*1024

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

// answer is a send request's answer: its status and JSON body, replayed
// when it is the one stored for the request's Idempotency-Key.
type answer struct {
	code     int
	body     []byte
	replayed bool
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	m := metrics.NewSet()
	defer func() { _ = s.d.Metrics.Emit(m) }()
	ans, rf := s.answerSend(w, r, m)
	if rf != nil {
		m.Add(MetricRequestErrors, metrics.Count, 1)
		s.log.InfoContext(r.Context(), "send refused", "status", rf.code, "error", rf.body.Error, "fields", rf.body.Fields)
		if rf.retryAfter != "" {
			w.Header().Set("Retry-After", rf.retryAfter)
		}
		writeJSON(w, rf.code, rf.body)
		return
	}
	if ans.replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ans.code)
	_, _ = w.Write(ans.body)
}

// answerSend takes a send request through its steps: read, authorize,
// claim its Idempotency-Key, build the messages, apply the creators'
// backpressure, queue or store them, record the answer for the key.
func (s *Server) answerSend(w http.ResponseWriter, r *http.Request, m *metrics.Set) (answer, *refusal) {
	start := s.d.Now()
	ctx := r.Context()
	body, drafts, batch, rf := s.readRequest(w, r)
	if rf != nil {
		return answer{}, rf
	}
	p := principal(r)
	if rf := s.authorize(ctx, p, drafts, batch); rf != nil {
		return answer{}, rf
	}
	claim, rf := s.claim(r, p.Subject, body, len(drafts))
	if rf != nil {
		return answer{}, rf
	}
	if claim.replay != nil {
		return answer{code: claim.replay.StatusCode, body: []byte(claim.replay.Response), replayed: true}, nil
	}
	msgs, rf := s.messages(drafts, batch, p.Subject, claim, correlationID(ctx))
	if rf != nil {
		if claim.key != "" {
			_ = s.d.Idempotency.Abandon(ctx, claim.key)
		}
		return answer{}, rf
	}
	// A retry of a keyed request sends only what the earlier attempt did not
	// queue or store.
	outcomes := claim.outcomes(len(msgs))
	if rf := s.creatorBackpressure(ctx, msgs, outcomes, m); rf != nil {
		s.releaseClaim(ctx, claim.key, outcomes)
		return answer{}, rf
	}
	code, out, failed := s.sendAll(ctx, msgs, outcomes, batch, m, start)
	s.completeClaim(ctx, claim.key, failed, code, out, outcomes)
	return answer{code: code, body: out}, nil
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

// messages builds and validates the messages, with the ids of the claim's
// record when it has them and the request's correlation id.
func (s *Server) messages(drafts []Draft, batch bool, user string, c idempotencyClaim, correlation string) ([]message.Message, *refusal) {
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
			Timestamp: c.timestamp, MediaURLs: d.MediaURLs, Metadata: d.Metadata, Priority: d.Priority, CorrelationID: correlation,
		}
		errs, big := draftErrors(msgs[i], d)
		tooLarge = tooLarge || big
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

// draftErrors are the field errors of msg built from d, and whether one is
// the SQS size.
func draftErrors(msg message.Message, d Draft) (errs []message.FieldError, tooLarge bool) {
	var verr *message.ValidationError
	if err := msg.Validate(); errors.As(err, &verr) {
		tooLarge = errors.Is(err, message.ErrTooLarge)
		errs = verr.Fields
	}
	if len(d.MediaURLs) > 0 {
		errs = append(errs, message.FieldError{Field: "mediaUrls", Reason: message.MediaUnsupported})
	}
	return errs, tooLarge
}
