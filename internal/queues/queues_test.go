package queues

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNameKeepsSeedNamesInProd(t *testing.T) {
	cases := []struct{ base, env, want string }{
		{RateLimiterBase, "prod", "huntaze-rate-limiter-queue.fifo"},
		{WorkflowsBase, "prod", "huntaze-hybrid-workflows.fifo"},
		{RateLimiterBase, "dev", "huntaze-rate-limiter-queue-dev.fifo"},
		{RateLimiterDLQBase, "dev", "huntaze-rate-limiter-dlq-dev.fifo"},
		{WorkflowsBase, "staging", "huntaze-hybrid-workflows-staging.fifo"},
		{WorkflowsDLQBase, "dev", "huntaze-hybrid-workflows-dlq-dev.fifo"},
	}
	for _, c := range cases {
		if got := Name(c.base, c.env); got != c.want {
			t.Errorf("Name(%q, %q) = %q, want %q", c.base, c.env, got, c.want)
		}
	}
}

func TestBothPairsAreFIFOOnBothSidesWithAHighRedriveBackstop(t *testing.T) {
	for _, p := range All("dev") {
		for _, q := range []Queue{p.Main, p.DeadLetter} {
			if !q.FIFO || !strings.HasSuffix(q.Name, ".fifo") || q.Attributes()["ContentBasedDeduplication"] != "false" {
				t.Errorf("%s: FIFO=%v; both pairs are FIFO with explicit deduplication ids", q.Name, q.FIFO)
			}
		}
		if p.MaxReceiveCount != 1000 {
			t.Errorf("%s: maxReceiveCount %d; outages must not dead-letter, so the backstop is SQS's maximum", p.Main.Name, p.MaxReceiveCount)
		}
		if a := p.Main.Attributes(); a["DeduplicationScope"] != "messageGroup" || a["FifoThroughputLimit"] != "perMessageGroupId" {
			t.Errorf("%s: not in high-throughput mode: %v", p.Main.Name, a)
		}
	}
}

func TestFIFOPairIsFIFOOnBothSidesAndEncrypted(t *testing.T) {
	p := Workflows("dev")
	for _, q := range []Queue{p.Main, p.DeadLetter} {
		if !q.FIFO || !strings.HasSuffix(q.Name, ".fifo") {
			t.Errorf("%s: FIFO=%v; a FIFO queue's DLQ must be FIFO too", q.Name, q.FIFO)
		}
		if !q.KMSEncrypted {
			t.Errorf("%s is not KMS-encrypted", q.Name)
		}
		if q.Attributes()["ContentBasedDeduplication"] != "false" {
			t.Errorf("%s dedups by content; two messages with the same text would collapse", q.Name)
		}
	}
}

func TestVisibilityTimeoutFitsTheLimiterLambda(t *testing.T) {
	const limiterLambdaTimeoutSeconds = 30
	if got := RateLimiter("dev").Main.VisibilityTimeout.Seconds(); got < 6*limiterLambdaTimeoutSeconds {
		t.Fatalf("limiter queue visibility %vs < 6 × Lambda timeout", got)
	}
}

func TestRedrivePolicy(t *testing.T) {
	p := RateLimiter("dev")
	var got struct {
		Target string `json:"deadLetterTargetArn"`
		Max    int    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(p.RedrivePolicy("arn:aws:sqs:us-east-1:000000000000:dlq")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Target != "arn:aws:sqs:us-east-1:000000000000:dlq" || got.Max != p.MaxReceiveCount {
		t.Fatalf("redrive policy = %+v", got)
	}
}

func TestAttributesUseSeconds(t *testing.T) {
	a := Workflows("dev").Main.Attributes()
	if a["VisibilityTimeout"] != "600" || a["MessageRetentionPeriod"] != "1209600" || a["FifoQueue"] != "true" {
		t.Fatalf("attributes = %v", a)
	}
	if RateLimiter("dev").DeadLetter.Attributes()["FifoQueue"] != "true" {
		t.Fatal("the intake DLQ of a FIFO queue must be FIFO (AWS refuses a standard one)")
	}
}
