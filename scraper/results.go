package scraper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// Record is the JSON written to S3 for every outcome (seed 003 R8.2).
type Record struct {
	MessageID     string    `json:"messageId"`
	CreatorID     string    `json:"creatorId"`
	CorrelationID string    `json:"correlationId"`
	Status        string    `json:"status"`
	ErrorClass    string    `json:"errorClass,omitempty"`
	Detail        string    `json:"detail,omitempty"`
	HTTPStatus    int       `json:"httpStatus,omitempty"`
	Attempts      int       `json:"attempts"`
	Failures      int       `json:"failures"`
	StartedAt     time.Time `json:"startedAt"`
	DurationMS    int64     `json:"durationMs"`
}

// S3API is the part of the S3 client the results writer uses.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Results writes outcome records and failure captures to S3.
type Results struct {
	S3     S3API
	Bucket string
	// CapturesKey is the KMS key the captures (a creator's logged-in chat)
	// are encrypted with: only the scraper task may encrypt with it, and
	// the bucket refuses captures under any other key.
	CapturesKey string
}

// Write stores the record, and the viewport screenshot and page HTML when
// given. Keys: results/<creator>/<messageId>/<correlationId>-<time>-<status>.json
// and artifacts/<same>.{png,html}, so a capture is found from either id
// (captures expire after 7 days: the bucket's lifecycle rules go by prefix).
func (r Results) Write(ctx context.Context, rec Record, art *onlyfans.Artifacts) error {
	name := fmt.Sprintf("%s/%s/%s-%s-%s", rec.CreatorID, rec.MessageID, rec.CorrelationID, rec.StartedAt.UTC().Format("20060102T150405.000000000Z"), rec.Status)
	base := "results/" + name
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := r.put(ctx, base+".json", "application/json", body, ""); err != nil {
		return err
	}
	if art == nil {
		return nil
	}
	if len(art.Screenshot) > 0 {
		if err := r.put(ctx, "artifacts/"+name+".png", "image/png", art.Screenshot, r.CapturesKey); err != nil {
			return err
		}
	}
	if art.HTML != "" {
		return r.put(ctx, "artifacts/"+name+".html", "text/html; charset=utf-8", []byte(art.HTML), r.CapturesKey)
	}
	return nil
}

func (r Results) put(ctx context.Context, key, contentType string, body []byte, kmsKey string) error {
	in := &s3.PutObjectInput{
		Bucket: aws.String(r.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String(contentType),
	}
	if kmsKey != "" {
		in.ServerSideEncryption, in.SSEKMSKeyId = s3types.ServerSideEncryptionAwsKms, aws.String(kmsKey)
	}
	_, err := r.S3.PutObject(ctx, in)
	if err != nil {
		return fmt.Errorf("results: put %s: %w", key, err)
	}
	return nil
}
