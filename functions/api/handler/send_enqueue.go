package handler

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/huntaze/message-pipeline/internal/enqueue"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/metrics"
)

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
	for j, res := range s.sendOrStore(ctx, todo, m, start) {
		results[todoIdx[j]] = res
		if res.Status != StatusFailed {
			outcomes[todoIdx[j]] = res.Status
		}
	}
	code, failed = answerCode(results)
	var resp any = batchResponse{Results: results}
	if !batch {
		resp = results[0]
	}
	out, _ = json.Marshal(resp) // plain structs of strings always encode
	return code, out, failed
}

// answerCode is 202, or 500 when a message was stored for replay because
// SQS failed, or 503 when one was neither queued nor stored (failed).
func answerCode(results []Result) (code int, failed bool) {
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
	return code, failed
}

// sendOrStore reads the creators' fallback backlogs (the one DynamoDB call
// this adds to a send: may these creators' messages go to SQS, or do
// earlier ones wait in the fallback table?) and then queues or stores
// msgs. A backlog it cannot read fails them all: sending blind could
// overtake (nothing accepted).
func (s *Server) sendOrStore(ctx context.Context, msgs []message.Message, m *metrics.Set, start time.Time) []Result {
	if len(msgs) == 0 {
		return nil
	}
	creators := make([]string, 0, len(msgs))
	for _, msg := range msgs {
		creators = append(creators, msg.CreatorKey())
	}
	backlogs, err := s.d.Fallback.Backlogs(ctx, creators)
	if err == nil {
		return s.enqueue(ctx, msgs, backlogs, m, start)
	}
	s.log.ErrorContext(ctx, "creators' fallback backlog unreadable; nothing sent", "creators", creators, "error", err)
	m.Add(MetricOrderUnknown, metrics.Count, float64(len(msgs)))
	results := make([]Result, len(msgs))
	for i, msg := range msgs {
		results[i] = Result{MessageID: msg.MessageID, Status: StatusFailed, Error: errOrderUnknown}
	}
	return results
}

// pending is one message on its way: whether it joins its creator's
// fallback backlog, and the error of its send to SQS.
type pending struct {
	msg     message.Message
	joined  bool
	sendErr error
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
	ps := make([]pending, len(msgs))
	var direct []message.Message
	var directIdx []int
	for i, msg := range msgs {
		ps[i] = pending{msg: msg, joined: backlogs[msg.CreatorKey()].Waiting()}
		if !ps[i].joined {
			direct, directIdx = append(direct, msg), append(directIdx, i)
		}
	}
	for j, err := range s.d.Sender.Send(ctx, direct) {
		ps[directIdx[j]].sendErr = err
	}
	results := make([]Result, len(msgs))
	var creators []string
	store := map[string][]int{} // per creator, in request order
	for i, p := range ps {
		if !p.joined && p.sendErr == nil {
			results[i] = Result{MessageID: p.msg.MessageID, Status: StatusQueued}
			m.Add(MetricQueued, metrics.Count, 1)
			continue
		}
		if p.sendErr != nil {
			m.Add(MetricSendFailures, metrics.Count, 1)
		}
		c := p.msg.CreatorKey()
		if store[c] == nil {
			creators = append(creators, c)
		}
		store[c] = append(store[c], i)
	}
	for _, c := range creators {
		s.storeCreator(ctx, c, ps, store[c], results, m)
	}
	s.logSends(ctx, ps, results, start)
	return results
}

// storeCreator stores creator's messages idx (of ps) in the fallback table
// in order, under consecutive sequences from one Reserve; from the first
// that cannot be stored on, they fail.
func (s *Server) storeCreator(ctx context.Context, creator string, ps []pending, idx []int, results []Result, m *metrics.Set) {
	first, storeErr := s.d.Fallback.Reserve(ctx, creator, len(idx))
	for k, i := range idx {
		p := ps[i]
		if storeErr == nil {
			storeErr = s.store(ctx, creator, first+int64(k), p)
		}
		switch {
		case storeErr != nil:
			results[i] = Result{MessageID: p.msg.MessageID, Status: StatusFailed, Error: errNothingStored}
			s.log.ErrorContext(ctx, "message neither queued nor stored", "message_id", p.msg.MessageID, "creator_id", creator, "send_error", errString(p.sendErr), "store_error", storeErr)
		case p.joined:
			results[i] = Result{MessageID: p.msg.MessageID, Status: StatusStoredForReplay, Error: errJoinedReplay}
			m.Add(MetricFallbackJoined, metrics.Count, 1)
		default:
			results[i] = resultOf(p.msg.MessageID, StatusStoredForReplay)
			m.Add(MetricFallback, metrics.Count, 1)
		}
	}
}

// store puts one message in the fallback table at seq with its attributes
// (the correlation id among them, for the replay); one already there is
// stored.
func (s *Server) store(ctx context.Context, creator string, seq int64, p pending) error {
	attempts := 0
	var ee *enqueue.Error
	if errors.As(p.sendErr, &ee) {
		attempts = ee.Attempts
	}
	body, _ := p.msg.Marshal() // validated messages always encode
	lastErr := p.sendErr
	if p.joined {
		lastErr = errors.New("queued behind this creator's messages waiting in the fallback table")
	}
	err := s.d.Fallback.Put(ctx, p.msg.MessageID, creator, seq, string(body), p.msg.Attributes().Strings(), attempts, lastErr)
	if err != nil && !errors.Is(err, fallback.ErrExists) {
		return err
	}
	return nil
}

// logSends writes one line per message with its outcome.
func (s *Server) logSends(ctx context.Context, ps []pending, results []Result, start time.Time) {
	for i, p := range ps {
		level := slog.LevelInfo
		if results[i].Status == StatusFailed || p.sendErr != nil {
			level = slog.LevelError
		}
		s.log.Log(ctx, level, "message send", "message_id", p.msg.MessageID, "creator_id", p.msg.CreatorKey(),
			"timestamp", p.msg.Timestamp.Format(time.RFC3339Nano), "outcome", results[i].Status, "behind_fallback", p.joined,
			"latency_ms", s.d.Now().Sub(start).Milliseconds(), "error", errString(p.sendErr))
	}
}
