package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/devstack"
	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/test/harness"
	"github.com/huntaze/message-pipeline/test/local"
	"github.com/huntaze/message-pipeline/test/wait"
)

// sendNamed posts one message with X-Correlation-Id and returns its id and
// the API's status code.
func sendNamed(t *testing.T, p *local.Pipeline, creator, correlation, text string) (string, int) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"creatorId": creator, "recipientId": "fan-1", "content": text})
	req, _ := http.NewRequest("POST", p.APIURL+api.PathSend, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+local.Token("user-"+creator, false, creator))
	req.Header.Set(api.HeaderCorrelationID, correlation)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("send %s: %v", text, err)
	}
	defer resp.Body.Close()
	var out struct{ MessageID string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if got := resp.Header.Get(api.HeaderCorrelationID); got != correlation {
		t.Fatalf("send %s: the answer's correlation id is %q, want %q", text, got, correlation)
	}
	return out.MessageID, resp.StatusCode
}

// workflowsCorrelations peeks at the workflows queue (the scraper stopped)
// until it has seen want messages and returns messageId → correlation_id,
// leaving them visible again.
func workflowsCorrelations(t *testing.T, p *local.Pipeline, want int) map[string]string {
	t.Helper()
	got := map[string]string{}
	wait.Until(60*time.Second, 0, func() bool { // the receive long-polls for 1 s
		out, err := p.AWS.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(p.Queues.Workflows.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			msg, err := message.Parse([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("workflows message %s: %v", aws.ToString(m.Body), err)
			}
			got[msg.MessageID] = message.CorrelationIDOf(message.StringValues(m.MessageAttributes))
			if _, err := p.AWS.SQS.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(p.Queues.Workflows.URL), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatal(err)
			}
		}
		return len(got) >= want
	})
	if len(got) < want {
		t.Fatalf("the workflows queue showed %d of %d messages: %v\n%s", len(got), want, got, p.Summary())
	}
	return got
}

// resultCorrelations reads the scraper's result records in S3 until each
// of ids has a sent one, and returns messageId → correlationId.
func resultCorrelations(t *testing.T, p *local.Pipeline, ids []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	if wait.Until(30*time.Second, 500*time.Millisecond, func() bool {
		list, err := p.AWS.S3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(devstack.Bucket), Prefix: aws.String("results/")})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range list.Contents {
			obj, err := p.AWS.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(devstack.Bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(obj.Body)
			obj.Body.Close()
			for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
				var rec struct{ MessageID, CorrelationID, Status string }
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Status == "sent" {
					got[rec.MessageID] = rec.CorrelationID
				}
			}
		}
		all := true
		for _, id := range ids {
			_, ok := got[id]
			all = all && ok
		}
		return all
	}) {
		return got
	}
	t.Fatalf("no sent result record for some of %v in S3: %v", ids, got)
	return nil
}

// logLinesAbout returns the JSON log lines (every component's) that name
// messageID.
func logLinesAbout(logs string, messageID string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(logs, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["message_id"] == messageID {
			out = append(out, rec)
		}
	}
	return out
}

func TestTheCorrelationIDOfARequestReachesTheWorkflowsQueueAndTheScrapersLogsAndResults(t *testing.T) {
	// GIVEN the pipeline with the scraper stopped, so the workflows queue
	// keeps what the limiter forwards, and results flushed every second
	creators := []string{"creator-a", "creator-b"}
	logs := &harness.Buffer{}
	p := local.Start(t, local.Options{Creators: creators, Options: devstack.Options{Window: window, OutageBackoffMax: 4 * time.Second, LimiterPollers: 2, ReplayEvery: time.Second, Logs: logs,
		ScraperEnv: map[string]string{"RESULTS_FLUSH_EVERY": "1s"}}})
	if !wait.Until(60*time.Second, 100*time.Millisecond, func() bool { return strings.Contains(p.ScraperOutput(), `"msg":"scraper started"`) }) {
		t.Fatalf("the scraper did not start:\n%s", p.ScraperOutput())
	}
	if code := p.StopScraper(syscall.SIGTERM); code != 0 {
		t.Fatalf("scraper exit %d", code)
	}

	// WHEN creator-a sends with X-Correlation-Id, and creator-b does while
	// the API cannot reach SQS (the fallback table, then the replay)
	want := map[string]string{}
	id, code := sendNamed(t, p, "creator-a", "e2e-direct.1", "named, direct")
	if code != http.StatusAccepted {
		t.Fatalf("direct send: %d", code)
	}
	want[id] = "e2e-direct.1"
	p.SQSFault.Failing.Store(true)
	id, code = sendNamed(t, p, "creator-b", "e2e-fallback_2", "named, through the fallback table")
	p.SQSFault.Failing.Store(false)
	if code != http.StatusInternalServerError {
		t.Fatalf("send during the outage: %d, want 500 stored_for_replay", code)
	}
	want[id] = "e2e-fallback_2"

	// THEN the workflows queue holds each with its request's correlation_id
	for id, c := range workflowsCorrelations(t, p, len(want)) {
		if want[id] != c {
			t.Errorf("workflows message %s: correlation_id %q, want %q", id, c, want[id])
		}
	}

	// WHEN the scraper runs again and sends them
	p.StartScraper()
	waitDelivered(t, p, len(want), 2*time.Minute)

	// THEN each one's sent result record carries its correlation id
	var ids []string
	for id := range want {
		ids = append(ids, id)
	}
	for id, c := range resultCorrelations(t, p, ids) {
		if w, ok := want[id]; ok && w != c {
			t.Errorf("result record of %s: correlationId %q, want %q", id, c, w)
		}
	}
	// AND every log line about each message, whichever component wrote it,
	// names its correlation id; the API, the limiter and the scraper (and
	// the replay for the stored one) all wrote some
	all := logs.String()
	for id, c := range want {
		wrote := map[string]bool{}
		for _, l := range logLinesAbout(all, id) {
			wrote[l["msg"].(string)] = true
			if l["correlation_id"] != c {
				t.Errorf("log line about %s without its correlation id %q: %v", id, c, l)
			}
		}
		for _, msg := range []string{"message send", "rate limit decision", "message processed"} {
			if !wrote[msg] {
				t.Errorf("no %q line about %s (lines: %v)", msg, id, wrote)
			}
		}
		if c == "e2e-fallback_2" && !wrote["fallback replay"] {
			t.Errorf("no replay line about %s (lines: %v)", id, wrote)
		}
	}
}
