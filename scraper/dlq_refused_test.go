package scraper_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/test/harness"
)

// dlqRefused is the fixture's compressed queue whose DLQ refuses every
// message (a broken KMS key or queue policy on the DLQ alone).
type dlqRefused struct {
	*harness.CompressedVisibility
	dlq string
}

func (d dlqRefused) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if aws.ToString(in.QueueUrl) == d.dlq {
		return nil, errors.New("KMS.AccessDeniedException: the DLQ's key refuses")
	}
	return d.CompressedVisibility.SendMessage(ctx, in, o...)
}

// TestADLQThatKeepsRefusingIsLoudAndSpendsFewReceives: a message the site
// refuses (a 4xx: its own fault, for the DLQ) while the DLQ refuses every
// move stays in its queue, with an error log and a metric at every try,
// and waits a growing delay between tries (the outage backoff, capped at
// 15 minutes), so that a DLQ outage takes days, not minutes, of receives
// towards the queue's maxReceiveCount backstop.
func TestADLQThatKeepsRefusingIsLoudAndSpendsFewReceives(t *testing.T) {
	t.Parallel()
	// GIVEN a DLQ that refuses every message and a message the site
	// refuses with a 400 every time
	f := setup(t, testConfig())
	f.consumer = scraper.NewConsumer(f.consumerConfig(), dlqRefused{f.compressed, f.queues.Workflows.DLQURL}, f.ledger, f.proc, slog.New(slog.NewJSONHandler(f.logs, nil)))
	f.site.InjectFaults(fakesite.Fault{Status: 400}, fakesite.Fault{Status: 400}, fakesite.Fault{Status: 400}, fakesite.Fault{Status: 400}, fakesite.Fault{Status: 400})
	f.enqueue(f.newMessage("creator-a", "refused, and the DLQ too"))
	// WHEN the scraper has tried to dead-letter it four times
	ok := f.runUntil(60*time.Second, func() bool { return len(f.compressed.Asked()) >= 4 })
	// THEN it is still in its queue, each try waited longer than the last,
	// and each was logged as an error and counted
	asked := f.compressed.Asked()
	if !ok || f.queueCount(f.queues.Workflows.URL) != 1 {
		t.Fatalf("ok %t, %d in the queue, asked %v", ok, f.queueCount(f.queues.Workflows.URL), asked)
	}
	// (The first four: a message in hand when the run stops is released
	// at once, visibility 0.)
	asked = asked[:4]
	for i := 1; i < len(asked); i++ {
		if asked[i] <= asked[i-1] {
			t.Fatalf("the waits between DLQ tries do not grow: %v", asked)
		}
	}
	if n := strings.Count(f.logs.String(), "DLQ send failed"); n < 4 {
		t.Fatalf("%d DLQ failures logged for %d tries", n, len(asked))
	}
	if !strings.Contains(f.emf.String(), scraper.MetricDeadLetterFailed) {
		t.Fatalf("no %s metric:\n%s", scraper.MetricDeadLetterFailed, f.emf)
	}
}
