package handler

import (
	"context"
	"net/http"

	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/replay"
)

func (s *Server) replay(w http.ResponseWriter, r *http.Request) {
	if !principal(r).HasScope(s.cfg.AdminScope) {
		writeJSON(w, http.StatusForbidden, errorBody{Error: "replay needs the " + s.cfg.AdminScope + " scope"})
		return
	}
	if s.cfg.Unavailable != "" {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "rate limiting is unavailable: " + s.cfg.Unavailable})
		return
	}
	// Each replayed message's line names that message's correlation id, not
	// this request's: the replay logs with the plain logger.
	res, err := Replay(r.Context(), s.d, s.cfg.ReplayBatch)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"replayed": res.Replayed, "failed": res.Failed, "skipped": res.Skipped})
}

// Replay moves waiting fallback items to the intake queue with the API's
// sender and table (internal/replay; the scheduled replay Lambda runs the
// same with only those).
func Replay(ctx context.Context, d Deps, limit int) (fallback.ReplayResult, error) {
	return replay.Replayer{Sender: d.Sender, Store: d.Fallback, Log: d.Log, Metrics: d.Metrics}.Run(ctx, limit)
}
