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
	d := s.d
	d.Log = s.log
	res, err := Replay(r.Context(), d, s.cfg.ReplayBatch)
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
