package harness

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/devstack/emulator"
)

// Region is the region every emulated client uses.
const Region = emulator.Region

// AWSConfig returns an SDK config with static credentials that never reads
// a developer's real AWS profile.
func AWSConfig() aws.Config { return emulator.AWSConfig() }

// Fauxqs is a running fauxqs emulator serving SQS and S3.
type Fauxqs struct{ *emulator.Fauxqs }

// StartFauxqs starts fauxqs on a free 127.0.0.1 port through the loopback
// launcher, stopped after the test.
func StartFauxqs(t T) *Fauxqs {
	t.Helper()
	f, err := emulator.StartFauxqs(RepoRoot(t))
	check(t, err)
	t.Logf("harness: fauxqs (SQS+S3) listening on %s", f.Endpoint)
	supervise(t, f.Process)
	return &Fauxqs{f}
}

// CreateQueues creates every queue of env in this fauxqs with the names and
// attributes of the CDK stack (internal/queues), dead-letter queues first.
func (f *Fauxqs) CreateQueues(t T, env string) emulator.System {
	t.Helper()
	v, err := f.Fauxqs.CreateQueues(context.Background(), env)
	check(t, err)
	return v
}

// Dynalite is a running in-memory DynamoDB emulator.
type Dynalite struct{ *emulator.Dynalite }

// StartDynalite starts dynalite on a free 127.0.0.1 port, stopped after the
// test.
func StartDynalite(t T) *Dynalite {
	t.Helper()
	d, err := emulator.StartDynalite(RepoRoot(t))
	check(t, err)
	t.Logf("harness: dynalite (DynamoDB) listening on %s", d.Endpoint)
	supervise(t, d.Process)
	return &Dynalite{d}
}

// CreateTable creates a table keyed by the string attribute key.
func (d *Dynalite) CreateTable(t T, name, key string) {
	t.Helper()
	if err := emulator.CreateTable(context.Background(), d.DynamoDB, name, key); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// Drain receives and deletes everything visible in a queue, with all
// attributes. fauxqs returns one message per FIFO group per receive, so it
// loops until a receive comes back empty (bounded).
func Drain(t T, client *sqs.Client, url string) []sqstypes.Message {
	t.Helper()
	var out []sqstypes.Message
	waited := 0
	for range 1000 {
		// A short visibility: if a receive's answer is lost on the way (and
		// the SDK retries), its messages come back in 1 s, not the queue's
		// timeout; the drain waits for them before it calls the queue empty.
		r, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}, VisibilityTimeout: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("harness: drain %s: %v", url, err)
		}
		if len(r.Messages) == 0 {
			if lostInFlight(client, url) && waited < 3 {
				waited++
				time.Sleep(1100 * time.Millisecond)
				continue
			}
			return out
		}
		for _, m := range r.Messages {
			out = append(out, m)
			if _, err := client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("harness: delete: %v", err)
			}
		}
	}
	t.Fatalf("harness: queue %s never emptied", url)
	return nil
}

// lostInFlight reports whether messages are in flight that nobody holds:
// only after a receive whose answer was lost (drains delete what they get).
func lostInFlight(client *sqs.Client, url string) bool {
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	return err == nil && out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible)] != "0"
}

// QueueDepth returns visible + in flight + delayed messages of a queue, or
// -1 if the queue cannot be read.
func QueueDepth(client *sqs.Client, url string) int { return emulator.QueueDepth(client, url) }
