package scraper

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// putRecorder records what would be stored. A double on purpose: the S3
// emulator accepts SSE-KMS parameters without checking them, so the request
// itself is what can be asserted here (the bucket policy that refuses other
// keys is asserted on the template, infra/storage_test.go).
type putRecorder struct{ puts []*s3.PutObjectInput }

func (p *putRecorder) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	p.puts = append(p.puts, in)
	return &s3.PutObjectOutput{}, nil
}

func TestCapturesAreEncryptedWithTheirKeyAndNamedByMessageAndCorrelation(t *testing.T) {
	// GIVEN a failed send with a screenshot and the page
	rec := &putRecorder{}
	r := Results{S3: rec, Bucket: "b", CapturesKey: "arn:aws:kms:us-east-1:111122223333:key/captures"}
	// WHEN it is written
	err := r.Write(context.Background(), Record{MessageID: "m-1", CorrelationID: "c-9", CreatorID: "creator-a", Status: "failed", StartedAt: time.Unix(0, 0)},
		&onlyfans.Artifacts{Screenshot: []byte("png"), HTML: "<html>"})
	if err != nil || len(rec.puts) != 3 {
		t.Fatalf("%d puts, %v", len(rec.puts), err)
	}
	// THEN the record is plain, both captures use the captures key, and
	// every key names the message and the correlation id
	for _, in := range rec.puts {
		key := aws.ToString(in.Key)
		if !strings.Contains(key, "/m-1/c-9-") {
			t.Errorf("key %s does not link message and correlation", key)
		}
		capture := strings.HasPrefix(key, "artifacts/")
		encrypted := in.ServerSideEncryption == s3types.ServerSideEncryptionAwsKms && aws.ToString(in.SSEKMSKeyId) == r.CapturesKey
		if capture != encrypted {
			t.Errorf("%s: capture %t, encrypted with the captures key %t", key, capture, encrypted)
		}
	}
}
