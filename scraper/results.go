package scraper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// Record is the JSON line written to S3 for every outcome (seed 003 R8.2).
type Record struct {
	MessageID     string `json:"messageId"`
	CreatorID     string `json:"creatorId"`
	CorrelationID string `json:"correlationId"`
	Status        string `json:"status"`
	ErrorClass    string `json:"errorClass,omitempty"`
	Detail        string `json:"detail,omitempty"`
	HTTPStatus    int    `json:"httpStatus,omitempty"`
	Attempts      int    `json:"attempts"`
	// SendRequests is how many send requests the page issued for the last
	// click (one reached the site; more means the page retried itself).
	SendRequests int       `json:"sendRequests,omitempty"`
	Failures     int       `json:"failures"`
	StartedAt    time.Time `json:"startedAt"`
	DurationMS   int64     `json:"durationMs"`
	// Captures is the key prefix of the failure's captures (.png, .html,
	// .zip), empty when there are none.
	Captures string `json:"captures,omitempty"`
}

// S3API is the part of the S3 client the results writer uses.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// ResultsConfig of the results writer.
type ResultsConfig struct {
	Bucket string
	// CapturesKey is the KMS key the captures (a creator's logged-in chat)
	// are encrypted with: only the scraper task may encrypt with it, and
	// the bucket refuses captures under any other key.
	CapturesKey string
	// Owner names this process in object keys (two tasks never write the
	// same key).
	Owner string
	// FlushEvery and MaxRecords bound how long and how many records wait
	// in memory before one JSON-lines object is written.
	FlushEvery time.Duration
	MaxRecords int
	// MaxPending bounds the records kept while S3 refuses writes (the
	// oldest are dropped, logged, beyond it).
	MaxPending int
}

// Results writes outcome records to S3 in batches, one JSON-lines object
// per flush (one PUT per MaxRecords or FlushEvery instead of one per
// message: the largest variable cost per message otherwise), and failure
// captures at once. Records are the audit trail, not the messages: a task
// killed without its shutdown loses at most one flush of records (every
// outcome is also a log line), never a message.
type Results struct {
	s3  S3API
	cfg ResultsConfig
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	pending []Record
	seq     int
}

// NewResults returns a results writer; Run flushes it on time, Flush at
// the end. cfg must be complete (its defaults are scraper/settings'
// RESULTS_*).
func NewResults(client S3API, cfg ResultsConfig, log *slog.Logger, now func() time.Time) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Results{s3: client, cfg: cfg, log: log, now: now}, nil
}

// Validate reports a setting the results writer cannot work without.
func (c ResultsConfig) Validate() error {
	switch {
	case c.FlushEvery <= 0:
		return fmt.Errorf("results: flush interval %s must be positive (RESULTS_FLUSH_EVERY)", c.FlushEvery)
	case c.MaxRecords <= 0:
		return fmt.Errorf("results: %d records per object must be positive (RESULTS_MAX_RECORDS)", c.MaxRecords)
	case c.MaxPending < c.MaxRecords:
		return fmt.Errorf("results: %d pending records must hold at least one object's %d (RESULTS_MAX_PENDING)", c.MaxPending, c.MaxRecords)
	}
	return nil
}

// Write stores the failure captures (viewport screenshot, page HTML,
// Playwright trace) under
// artifacts/<creator>/<messageId>/<correlationId>-<time>-<status>.{png,html,zip}
// at once (found from either id; they expire after 7 days by the bucket's
// lifecycle rule on the prefix) and queues the record, naming them.
func (r *Results) Write(ctx context.Context, rec Record, art *onlyfans.Artifacts) error {
	var errs []error
	if art != nil {
		name := fmt.Sprintf("artifacts/%s/%s/%s-%s-%s", rec.CreatorID, rec.MessageID, rec.CorrelationID, rec.StartedAt.UTC().Format("20060102T150405.000000000Z"), rec.Status)
		rec.Captures = name
		for _, c := range []struct {
			ext, contentType string
			body             []byte
		}{{".png", "image/png", art.Screenshot}, {".html", "text/html; charset=utf-8", []byte(art.HTML)}, {".zip", "application/zip", art.Trace}} {
			if len(c.body) == 0 {
				continue
			}
			if err := r.put(ctx, name+c.ext, c.contentType, c.body, r.cfg.CapturesKey); err != nil {
				errs = append(errs, err)
			}
		}
	}
	r.mu.Lock()
	r.pending = append(r.pending, rec)
	full := len(r.pending) >= r.cfg.MaxRecords
	r.mu.Unlock()
	if full {
		if err := r.Flush(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// Run flushes every FlushEvery until ctx ends.
func (r *Results) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Flush(ctx); err != nil {
				r.log.Warn("results not flushed; kept for the next flush", "error", err)
			}
		}
	}
}

// Flush writes the pending records as one JSON-lines object under
// results/dt=<yyyy-mm-dd>/hour=<hh>/<owner>-<time>-<seq>.jsonl (partitions
// Athena reads). On failure the records stay for the next flush.
func (r *Results) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	r.seq++
	seq := r.seq
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, rec := range batch {
		_ = enc.Encode(rec)
	}
	t := r.now().UTC()
	key := fmt.Sprintf("results/dt=%s/hour=%s/%s-%s-%d.jsonl", t.Format("2006-01-02"), t.Format("15"), r.cfg.Owner, t.Format("20060102T150405.000Z"), seq)
	err := r.put(ctx, key, "application/x-ndjson", body.Bytes(), "")
	if err == nil {
		return nil
	}
	r.mu.Lock()
	r.pending = append(batch, r.pending...)
	if over := len(r.pending) - r.cfg.MaxPending; over > 0 {
		r.log.Error("results dropped: S3 refused writes for too long (the outcomes are in the logs)", "records", over)
		r.pending = r.pending[over:]
	}
	r.mu.Unlock()
	return err
}

func (r *Results) put(ctx context.Context, key, contentType string, body []byte, kmsKey string) error {
	in := &s3.PutObjectInput{
		Bucket: aws.String(r.cfg.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String(contentType),
	}
	if kmsKey != "" {
		in.ServerSideEncryption, in.SSEKMSKeyId = s3types.ServerSideEncryptionAwsKms, aws.String(kmsKey)
	}
	_, err := r.s3.PutObject(ctx, in)
	if err != nil {
		return fmt.Errorf("results: put %s: %w", key, err)
	}
	return nil
}
