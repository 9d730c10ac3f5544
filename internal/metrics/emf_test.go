package metrics

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestEmitWritesOneEMFLine(t *testing.T) {
	// GIVEN an emitter with two dimensions and a set with a counter added twice
	var buf bytes.Buffer
	at := time.UnixMilli(1_790_000_000_123)
	e := New(&buf, map[string]string{"Service": "rate-limiter", "Environment": "dev"}, func() time.Time { return at })
	s := NewSet()
	s.Add("rate_limit_allowed_count", Count, 2)
	s.Add("rate_limit_allowed_count", Count, 3)
	s.Put("batch_duration", Milliseconds, 12.5)

	// WHEN it is emitted
	if err := e.Emit(s); err != nil {
		t.Fatal(err)
	}

	// THEN one JSON line holds the values, the dimensions and the EMF metadata
	if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("want one line, got %q", buf.String())
	}
	var got struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Allowed     float64 `json:"rate_limit_allowed_count"`
		Duration    float64 `json:"batch_duration"`
		Service     string
		Environment string
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	cw := got.AWS.CloudWatchMetrics
	if got.AWS.Timestamp != at.UnixMilli() || len(cw) != 1 || cw[0].Namespace != Namespace {
		t.Fatalf("metadata = %+v", got.AWS)
	}
	if len(cw[0].Dimensions) != 1 || len(cw[0].Dimensions[0]) != 2 || cw[0].Dimensions[0][0] != "Environment" {
		t.Fatalf("dimensions = %v", cw[0].Dimensions)
	}
	if len(cw[0].Metrics) != 2 || cw[0].Metrics[0].Name != "batch_duration" || cw[0].Metrics[0].Unit != "Milliseconds" {
		t.Fatalf("metrics = %+v", cw[0].Metrics)
	}
	if got.Allowed != 5 || got.Duration != 12.5 || got.Service != "rate-limiter" || got.Environment != "dev" {
		t.Fatalf("values = %+v", got)
	}
}

func TestEmitEmptySetWritesNothing(t *testing.T) {
	var buf bytes.Buffer
	if err := New(&buf, nil, nil).Emit(NewSet()); err != nil || buf.Len() != 0 {
		t.Fatalf("Emit(empty) wrote %q, %v", buf.String(), err)
	}
}

func TestWithAddsDimensions(t *testing.T) {
	var buf bytes.Buffer
	base := New(&buf, map[string]string{"Service": "scraper"}, nil)
	s := NewSet()
	s.Add("scraping_failure_count", Count, 1)
	if err := base.With(map[string]string{"ErrorClass": "timeout"}).Emit(s); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil || got["ErrorClass"] != "timeout" || got["Service"] != "scraper" {
		t.Fatalf("line %s (%v)", buf.String(), err)
	}
}
