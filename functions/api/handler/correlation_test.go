package handler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/test/harness"
)

// logLines returns the fixture's JSON log lines with message msg.
func (f *fixture) logLines(msg string) []map[string]any {
	f.t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func TestTheCorrelationIDOfTheRequestRidesOnEveryMessageAndLogLine(t *testing.T) {
	// GIVEN a client that names its request
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "")

	// WHEN it sends a batch of two with X-Correlation-Id
	w, _ := f.do(call{method: "POST", path: api.PathSend, token: tok, body: `{"messages":[` + goodBody + `,` + goodBody + `]}`,
		headers: map[string]string{api.HeaderCorrelationID: "checkout-7.a_b"}})

	// THEN the answer echoes it, both queued messages carry it as their
	// correlation_id attribute, and each message's log line names it
	if w.Code != http.StatusAccepted || w.Header().Get(api.HeaderCorrelationID) != "checkout-7.a_b" {
		t.Fatalf("status %d, correlation header %q", w.Code, w.Header().Get(api.HeaderCorrelationID))
	}
	got := harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)
	if len(got) != 2 {
		t.Fatalf("queue holds %d", len(got))
	}
	for _, m := range got {
		if v := aws.ToString(m.MessageAttributes[message.AttrCorrelationID].StringValue); v != "checkout-7.a_b" {
			t.Errorf("queued correlation_id = %q", v)
		}
	}
	lines := f.logLines("message send")
	if len(lines) != 2 {
		t.Fatalf("%d send log lines:\n%s", len(lines), f.logs)
	}
	for _, l := range lines {
		if l["correlation_id"] != "checkout-7.a_b" {
			t.Errorf("log line without the correlation id: %v", l)
		}
	}
}

func TestACorrelationIDIsGeneratedWhenNoneOrAnInvalidOneIsGiven(t *testing.T) {
	f := setup(t)
	tok := tokenFor(t, "user-1", time.Hour, "")
	for name, given := range map[string]string{"none": "", "invalid": "../../etc/passwd"} {
		t.Run(name, func(t *testing.T) {
			// GIVEN a request without a usable X-Correlation-Id
			headers := map[string]string{}
			if given != "" {
				headers[api.HeaderCorrelationID] = given
			}
			// WHEN it is sent
			w, _ := f.do(call{method: "POST", path: api.PathSend, token: tok, body: goodBody, headers: headers})

			// THEN it is accepted (never refused for its correlation id)
			// with a generated UUID that the queued message carries
			id := w.Header().Get(api.HeaderCorrelationID)
			if w.Code != http.StatusAccepted || uuid.Validate(id) != nil {
				t.Fatalf("status %d, correlation id %q", w.Code, id)
			}
			got := harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)
			if len(got) != 1 || aws.ToString(got[0].MessageAttributes[message.AttrCorrelationID].StringValue) != id {
				t.Fatalf("queued %d messages, attributes %v", len(got), got)
			}
			if given != "" && len(f.logLines("invalid "+api.HeaderCorrelationID+" replaced by a generated one")) == 0 {
				t.Fatalf("the replacement is not logged:\n%s", f.logs)
			}
		})
	}
}

func TestTheCorrelationIDSurvivesTheFallbackTableAndTheReplay(t *testing.T) {
	// GIVEN SQS failing, so the message goes to the fallback table
	f := setup(t)
	f.proxy.Failing.Store(true)
	w, _ := f.do(call{method: "POST", path: api.PathSend, token: tokenFor(t, "user-1", time.Hour, ""), body: goodBody,
		headers: map[string]string{api.HeaderCorrelationID: "req-during-outage"}})
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}

	// WHEN SQS recovers and the replay queues it
	f.proxy.Failing.Store(false)
	if res, err := api.Replay(context.Background(), f.deps, 10); err != nil || res.Replayed != 1 {
		t.Fatalf("replay %+v %v", res, err)
	}

	// THEN the queued message carries the request's correlation id, and the
	// replay's log line names it
	got := harness.Drain(t, f.aws.SQS, f.queues.RateLimiter.URL)
	if len(got) != 1 || aws.ToString(got[0].MessageAttributes[message.AttrCorrelationID].StringValue) != "req-during-outage" {
		t.Fatalf("replayed %d messages: %+v", len(got), got)
	}
	lines := f.logLines("fallback replay")
	if len(lines) == 0 || lines[len(lines)-1]["correlation_id"] != "req-during-outage" {
		t.Fatalf("replay log lines %v", lines)
	}
}

func TestTheDocumentedCorrelationIDPatternIsTheOneTheAPIAccepts(t *testing.T) {
	// GIVEN the schema api/openapi.yaml documents for X-Correlation-Id
	_, m := loadSpec(t)
	sp, ok := m.Components.Schemas.Get("CorrelationId")
	if !ok {
		t.Fatal("components.schemas.CorrelationId is missing")
	}
	schema := sp.Schema()
	re := regexp.MustCompile(schema.Pattern)
	// WHEN candidate ids are judged by both
	for _, s := range []string{"a", "A-1", "req_1.x", "-a", ".a", "a/b", "a b", "é", strings.Repeat("a", 128), strings.Repeat("a", 129), uuid.NewString()} {
		documented := re.MatchString(s) && int64(len(s)) <= *schema.MaxLength && int64(len(s)) >= *schema.MinLength
		// THEN they agree
		if documented != message.ValidCorrelationID(s) {
			t.Errorf("%q: documented valid %v, the API says %v", s, documented, message.ValidCorrelationID(s))
		}
	}
}
