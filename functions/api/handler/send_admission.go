package handler

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/huntaze/message-pipeline/internal/auth"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
	"github.com/huntaze/message-pipeline/internal/quota"
)

// What a send request must pass before anything is queued: the caller's
// request quota and the tenancy rules (authorize), its Idempotency-Key
// (claim), and its creators' waiting quotas (creatorBackpressure).

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
			s.log.WarnContext(ctx, "caller quota unavailable; not enforced", "user_id", user, "error", err)
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
			s.log.WarnContext(ctx, "send as a creator not granted", "user_id", user, "creator_id", message.Clip(d.CreatorID, 128))
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
		s.log.ErrorContext(r.Context(), "idempotency store unavailable", "error", err)
		return c, refuse(http.StatusServiceUnavailable, errorBody{Error: "cannot honour Idempotency-Key now; retry later"})
	case !claimed:
		c.replay = rec
		return c, nil
	}
	c.rec, c.timestamp = rec, rec.CreatedAt.UTC()
	return c, nil
}

// outcomes are the outcomes an earlier attempt of the keyed request
// recorded for its n messages ("" for each still to send).
func (c idempotencyClaim) outcomes(n int) []string {
	out := make([]string, n)
	if c.rec != nil && len(c.rec.Outcomes) == n {
		copy(out, c.rec.Outcomes)
	}
	return out
}

// completeClaim stores the answer for the key, or, when a message failed,
// only the progress: never keep an answer holding a failure, so the retry
// the client is told to make sends exactly the missing messages, same ids.
func (s *Server) completeClaim(ctx context.Context, key string, failed bool, code int, out []byte, outcomes []string) {
	switch {
	case key == "":
	case failed:
		s.releaseClaim(ctx, key, outcomes)
	default:
		if err := s.d.Idempotency.Complete(ctx, key, code, out); err != nil {
			s.log.WarnContext(ctx, "idempotency answer not stored", "error", err)
		}
	}
}

func (s *Server) releaseClaim(ctx context.Context, key string, outcomes []string) {
	if key == "" {
		return
	}
	if err := s.d.Idempotency.Release(ctx, key, outcomes); err != nil {
		s.log.WarnContext(ctx, "idempotency progress not stored", "error", err)
	}
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
	for _, c := range order {
		if counts[c] > s.cfg.CreatorWaiting {
			return s.tooManyForOneCreator(c, counts[c])
		}
	}
	if s.d.Quota == nil {
		return nil
	}
	for _, c := range order {
		ok, retry, err := s.d.Quota.Take(ctx, "creator#"+c, counts[c], quota.Rule{Interval: s.cfg.CreatorDrain, Burst: s.cfg.CreatorWaiting})
		switch {
		case errors.Is(err, quota.ErrExceedsBurst):
			return s.tooManyForOneCreator(c, counts[c])
		case err != nil:
			m.Add(MetricQuotaUnavailable, metrics.Count, 1)
			s.log.WarnContext(ctx, "creator quota unavailable; not enforced", "creator_id", c, "error", err)
		case !ok:
			return &refusal{code: http.StatusTooManyRequests, retryAfter: retryAfter(retry), body: errorBody{
				Error:  fmt.Sprintf("creator %s has about %d messages waiting (CREATOR_WAITING_CAP); retry later", c, s.cfg.CreatorWaiting),
				Fields: []message.FieldError{{Field: "creatorId", Reason: "too many messages waiting for this creator"}}}}
		}
	}
	return nil
}

// tooManyForOneCreator refuses a request that holds more messages for
// creator than its waiting cap: it could never fit.
func (s *Server) tooManyForOneCreator(creator string, n int) *refusal {
	return refuse(http.StatusRequestEntityTooLarge, errorBody{
		Error:  fmt.Sprintf("the request holds %d messages for creator %s; CREATOR_WAITING_CAP allows %d waiting per creator: send fewer per request", n, creator, s.cfg.CreatorWaiting),
		Fields: []message.FieldError{{Field: "messages", Reason: fmt.Sprintf("more messages for one creator than CREATOR_WAITING_CAP (%d)", s.cfg.CreatorWaiting)}}})
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
