package devstack

import (
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestLatencyWatchReportsThePercentilesOfSentMessagesByBacklog(t *testing.T) {
	// GIVEN log lines written in arbitrary chunks: 100 sends without a
	// backlog (1..100 ms), one queued send, and lines that are not sends
	l := NewLatencyWatch(io.Discard)
	var all strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&all, `{"msg":"message processed","status":"sent","delivery_latency_ms":%d,"backlog":"none"}`+"\n", i)
	}
	all.WriteString(`{"msg":"message processed","status":"sent","delivery_latency_ms":90000,"backlog":"queued"}` + "\n")
	all.WriteString(`{"msg":"message processed","status":"retry","delivery_latency_ms":0,"backlog":"none"}` + "\n")
	all.WriteString(`{"msg":"other"}` + "\n")
	b := []byte(all.String())
	for len(b) > 0 {
		n := min(37, len(b))
		if _, err := l.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	// THEN the summary gives p50 and p95 per class, sends only
	got := l.Summary()
	for _, want := range []string{"backlog=none p50 51 ms, p95 95 ms (100 sends)", "backlog=queued p50 90000 ms, p95 90000 ms (1 sends)"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
}
