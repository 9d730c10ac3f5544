package deadletter_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/deadletter"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/test/harness"
)

func TestMove_KeepsBodyAttributesGroupAndAddsTheReason(t *testing.T) {
	// GIVEN the stack's FIFO dead-letter queue in fauxqs
	f := harness.StartFauxqs(t)
	q := f.CreateQueues(t, "test")
	ctx := context.Background()
	attrs := map[string]sqstypes.MessageAttributeValue{}
	for i := range 10 { // already full: SQS allows 10
		attrs[fmt.Sprint("a", i)] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String("v")}
	}
	// WHEN a message is moved with a long reason that would cut a character
	reason := strings.Repeat("é", 600)
	err := deadletter.Move(ctx, f.SQS, q.Workflows.DLQURL, deadletter.Message{Body: `{"x":1}`, Attributes: attrs, GroupID: "creator-a", DeduplicationID: "m-1"}, reason)
	if err != nil {
		t.Fatal(err)
	}
	// THEN it is there with its body, group and a valid UTF-8 reason
	got := harness.Drain(t, f.SQS, q.Workflows.DLQURL)
	if len(got) != 1 || aws.ToString(got[0].Body) != `{"x":1}` || got[0].Attributes["MessageGroupId"] != "creator-a" {
		t.Fatalf("DLQ holds %+v", got)
	}
	r := aws.ToString(got[0].MessageAttributes[message.AttrFailureReason].StringValue)
	if !utf8.ValidString(r) || !strings.HasPrefix(r, "éé") || len(r) > 1024 || len(got[0].MessageAttributes) != 10 {
		t.Fatalf("reason %q (%d bytes), %d attributes", r, len(r), len(got[0].MessageAttributes))
	}
}

var _ deadletter.Sender = (*sqs.Client)(nil)
