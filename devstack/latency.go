package devstack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
)

// LatencyWatch passes the pipeline's log lines through to w and keeps the
// accepted → sent waits the scraper logs (delivery_latency_ms, the same
// figure as the EMF metric the delivery-latency-p95 alarm watches), so
// `make dev` can print their p95 live.
type LatencyWatch struct {
	w       io.Writer
	mu      sync.Mutex
	partial []byte
	samples map[string][]int64 // by backlog class, the last maxSamples
}

const maxSamples = 1000

// NewLatencyWatch writes through to w.
func NewLatencyWatch(w io.Writer) *LatencyWatch {
	return &LatencyWatch{w: w, samples: map[string][]int64{}}
}

func (l *LatencyWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.observe(l.partial[:i])
		l.partial = l.partial[i+1:]
	}
	l.mu.Unlock()
	return l.w.Write(p)
}

func (l *LatencyWatch) observe(line []byte) {
	if !bytes.Contains(line, []byte(`"delivery_latency_ms"`)) {
		return
	}
	var rec struct {
		Status  string `json:"status"`
		Latency int64  `json:"delivery_latency_ms"`
		Backlog string `json:"backlog"`
	}
	if json.Unmarshal(line, &rec) != nil || rec.Status != "sent" {
		return
	}
	s := append(l.samples[rec.Backlog], rec.Latency)
	if len(s) > maxSamples {
		s = s[len(s)-maxSamples:]
	}
	l.samples[rec.Backlog] = s
}

// Summary is the p50/p95 of the recent waits, per backlog class.
func (l *LatencyWatch) Summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := "accepted → sent:"
	if len(l.samples) == 0 {
		return out + " no send yet\n"
	}
	for _, class := range []string{"none", "queued"} {
		s := slices.Clone(l.samples[class])
		if len(s) == 0 {
			continue
		}
		slices.Sort(s)
		out += fmt.Sprintf(" backlog=%s p50 %d ms, p95 %d ms (%d sends);", class, s[len(s)/2], s[(len(s)*95+99)/100-1], len(s))
	}
	return out + "\n"
}
