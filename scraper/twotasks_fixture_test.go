package scraper_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/test/wait"
)

// twoTasks is two scraper tasks, A and B, on one Redis, one mark store
// table and one queue, behind one front, each with its own browser,
// processor and memory (reviews 22 T and U: a redelivery taken by the
// other task). marksA and marksB are each task's mark store client (nil:
// the fixture's); sqsB is B's SQS client (nil: the fixture's).
func (f *fixture) twoTasks(cfg scraper.Config, front func(http.Handler) http.Handler, marksA, marksB *scraper.DynamoMarks, sqsB scraper.SQSAPI) (a, b *scraper.Consumer) {
	f.t.Helper()
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	shared := f.marks
	processor := func(marks *scraper.DynamoMarks) *scraper.Processor {
		if marks != nil {
			f.marks = marks
		}
		f.behind(cfg, front)
		f.marks = shared
		return f.proc
	}
	procA, procB := processor(marksA), processor(marksB)
	if sqsB == nil {
		sqsB = f.aws.SQS
	}
	a = scraper.NewConsumer(f.consumerConfig(), f.aws.SQS, f.ledger, procA, log.With("task", "A"))
	b = scraper.NewConsumer(f.consumerConfig(), sqsB, f.ledger, procB, log.With("task", "B"))
	return a, b
}

// runUntilThenStop runs c until cond holds (polled every 50 ms) or
// timeout passes, then stops it and waits for its processings to end; it
// reports whether cond held.
func runUntilThenStop(c *scraper.Consumer, timeout time.Duration, cond func() bool) bool {
	stop, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(stop, context.Background()); close(done) }()
	ok := wait.Until(timeout, 50*time.Millisecond, cond)
	cancel()
	<-done
	return ok
}

// leaveInMemory runs task a until its unresolved click's mark is held in
// its memory only (the mark store refusing writes past the patience;
// refused counts them), then stops it.
func (f *fixture) leaveInMemory(t *testing.T, a *scraper.Consumer, timeout time.Duration, refused *atomic.Int64) {
	t.Helper()
	if !runUntilThenStop(a, timeout, func() bool {
		return strings.Contains(f.logs.String(), "not written to the mark store: only this task's memory holds it")
	}) {
		t.Fatalf("harness: A's unresolved mark was not left in its memory (%d refused):\n%s", refused.Load(), f.logs)
	}
}
