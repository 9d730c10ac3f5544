package scraper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/test/wait"
)

// putRecorder records what would be stored. A double on purpose: the S3
// emulator accepts SSE-KMS parameters without checking them, so the request
// itself is what can be asserted here (the bucket policy that refuses other
// keys is asserted on the template, infra/storage_test.go); it can also
// refuse writes on demand.
type putRecorder struct {
	mu     sync.Mutex
	puts   []*s3.PutObjectInput
	bodies [][]byte
	refuse bool
}

func (p *putRecorder) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse {
		return nil, errors.New("503 SlowDown")
	}
	b, _ := io.ReadAll(in.Body)
	p.puts, p.bodies = append(p.puts, in), append(p.bodies, b)
	return &s3.PutObjectOutput{}, nil
}

func (p *putRecorder) records(t *testing.T, prefix string) (objects int, recs []Record) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, in := range p.puts {
		if !strings.HasPrefix(aws.ToString(in.Key), prefix) {
			continue
		}
		objects++
		dec := json.NewDecoder(bytes.NewReader(p.bodies[i]))
		for dec.More() {
			var r Record
			if err := dec.Decode(&r); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
	}
	return objects, recs
}

func newTestResults(t *testing.T, s S3API, cfg ResultsConfig) *Results {
	t.Helper()
	cfg.Bucket, cfg.Owner = "b", "task-1"
	r, err := NewResults(s, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCapturesAreEncryptedWithTheirKeyAndNamedByMessageAndCorrelation(t *testing.T) {
	// GIVEN a failed send with a screenshot, the page and a trace
	rec := &putRecorder{}
	r := newTestResults(t, rec, ResultsConfig{CapturesKey: "arn:aws:kms:us-east-1:111122223333:key/captures", FlushEvery: time.Hour, MaxRecords: 1000, MaxPending: 20000})
	// WHEN it is written and flushed
	err := r.Write(context.Background(), Record{MessageID: "m-1", CorrelationID: "c-9", CreatorID: "creator-a", Status: "failed", StartedAt: time.Unix(0, 0)},
		&onlyfans.Artifacts{Screenshot: []byte("png"), HTML: "<html>", Trace: []byte("zip")})
	if err != nil || len(rec.puts) != 3 {
		t.Fatalf("%d puts before the flush, %v", len(rec.puts), err)
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// THEN the captures use the captures key and name the message and the
	// correlation id; the record is plain and names its captures
	for _, in := range rec.puts[:3] {
		key := aws.ToString(in.Key)
		if !strings.HasPrefix(key, "artifacts/creator-a/m-1/c-9-") || in.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms || aws.ToString(in.SSEKMSKeyId) != "arn:aws:kms:us-east-1:111122223333:key/captures" {
			t.Errorf("capture %s: encryption %q key %q", key, in.ServerSideEncryption, aws.ToString(in.SSEKMSKeyId))
		}
	}
	_, recs := rec.records(t, "results/")
	if len(recs) != 1 || !strings.HasPrefix(aws.ToString(rec.puts[0].Key), recs[0].Captures+".") || rec.puts[3].ServerSideEncryption != "" {
		t.Fatalf("records %+v", recs)
	}
}

func TestRecordsAreWrittenAsOneJSONLinesObjectPerFlush(t *testing.T) {
	// GIVEN a writer that flushes at 100 records
	rec := &putRecorder{}
	r := newTestResults(t, rec, ResultsConfig{MaxRecords: 100, MaxPending: 2000, FlushEvery: time.Hour})
	// WHEN 250 outcomes are written, then the task stops (final flush)
	for i := range 250 {
		if err := r.Write(context.Background(), Record{MessageID: "m", Attempts: i, Status: "sent"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// THEN three objects hold the 250 records in order, under a dated,
	// owner-named key
	objects, recs := rec.records(t, "results/dt=")
	if objects != 3 || len(recs) != 250 {
		t.Fatalf("%d objects, %d records", objects, len(recs))
	}
	for i, r := range recs {
		if r.Attempts != i {
			t.Fatalf("record %d is %d", i, r.Attempts)
		}
	}
	if k := aws.ToString(rec.puts[0].Key); !strings.Contains(k, "/hour=") || !strings.Contains(k, "/task-1-") || !strings.HasSuffix(k, ".jsonl") {
		t.Fatalf("key %s", k)
	}
}

func TestRecordsOfAFailedFlushGoOutWithTheNextOne(t *testing.T) {
	// GIVEN records pending and S3 refusing writes
	rec := &putRecorder{refuse: true}
	r := newTestResults(t, rec, ResultsConfig{MaxRecords: 1000, MaxPending: 20000, FlushEvery: 10 * time.Millisecond})
	for i := range 3 {
		_ = r.Write(context.Background(), Record{Attempts: i}, nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	// WHEN timed flushes fail, a record arrives, and S3 comes back
	time.Sleep(50 * time.Millisecond)
	_ = r.Write(context.Background(), Record{Attempts: 3}, nil)
	rec.mu.Lock()
	rec.refuse = false
	rec.mu.Unlock()
	// THEN a timed flush writes all four, in order, once
	wait.For(t, 10*time.Second, 10*time.Millisecond, "the four records to be written", func() bool {
		_, recs := rec.records(t, "results/")
		return len(recs) == 4
	})
	_, recs := rec.records(t, "results/")
	for i, r := range recs {
		if r.Attempts != i {
			t.Fatalf("order %+v", recs)
		}
	}
	cancel()
	<-done
	if _, recs := rec.records(t, "results/"); len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
}
