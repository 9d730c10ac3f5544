package handler

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/huntaze/message-pipeline/internal/queuedepth"
)

// QueueStatus is one queue's depth.
type QueueStatus = queuedepth.Status

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
		s.queuesAndFallback(ctx, &st)
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

// queuesAndFallback adds every queue's depth (publishing it:
// queuedepth.MetricQueueDepth) and the fallback table's pending count to
// st, with a reason for each queue unreachable or dead-letter queue not
// empty and for messages waiting for replay.
func (s *Server) queuesAndFallback(ctx context.Context, st *StatusResponse) {
	for _, qs := range s.depths().Read(ctx, s.cfg.Queues) {
		st.Queues = append(st.Queues, qs)
		switch {
		case !qs.Reachable:
			st.Reasons = append(st.Reasons, "queue "+qs.Name+" unreachable")
		case qs.DeadLetter && qs.Total() > 0:
			st.Reasons = append(st.Reasons, fmt.Sprintf("dead-letter queue %s holds %d messages", qs.Name, qs.Total()))
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

func (s *Server) depths() queuedepth.Reader {
	return queuedepth.Reader{Stats: s.d.QueueStats, Log: s.log, Metrics: s.d.Metrics}
}
