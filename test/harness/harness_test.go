package harness_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/internal/queues"
	"github.com/huntaze/message-pipeline/test/harness"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRedis_EvalSHARoundTripAndNoScriptAfterRestart(t *testing.T) {
	// GIVEN a real redis-server and a script loaded into it
	r := harness.StartRedis(t)
	c := r.Client()
	script := redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)
	sha, err := script.Load(ctx(t), c).Result()
	if err != nil {
		t.Fatalf("SCRIPT LOAD: %v", err)
	}

	// WHEN it is called by SHA twice
	first, err1 := c.EvalSha(ctx(t), sha, []string{"counter"}, 5).Int()
	second, err2 := c.EvalSha(ctx(t), sha, []string{"counter"}, 7).Int()

	// THEN both calls run the script on the server
	if err1 != nil || err2 != nil || first != 5 || second != 12 {
		t.Fatalf("EVALSHA = %d,%v then %d,%v; want 5 then 12", first, err1, second, err2)
	}

	// WHEN the server restarts empty on the same port (as after a failover)
	r.Restart()

	// THEN EVALSHA says NOSCRIPT and Script.Run falls back to EVAL
	err = c.EvalSha(ctx(t), sha, []string{"counter"}, 1).Err()
	if err == nil || !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		t.Fatalf("EVALSHA after restart: err = %v, want NOSCRIPT", err)
	}
	got, err := script.Run(ctx(t), c, []string{"counter"}, 3).Int()
	if err != nil || got != 3 {
		t.Fatalf("Script.Run after restart = %d, %v; want 3 (fresh, empty server)", got, err)
	}
}

func TestFauxqs_QueuesLikeTheStackAndFIFOOrderPerGroup(t *testing.T) {
	// GIVEN fauxqs with the project's queues
	f := harness.StartFauxqs(t)
	sys := f.CreateQueues(t, "test")

	// THEN each main queue redrives to its own DLQ with the stack's attributes
	for _, tc := range []struct {
		name string
		got  emulator.Provisioned
		spec queues.Pair
	}{{"rate limiter", sys.RateLimiter, queues.RateLimiter("test")}, {"workflows", sys.Workflows, queues.Workflows("test")}} {
		if !strings.HasSuffix(tc.got.URL, "/"+tc.spec.Main.Name) || !strings.HasSuffix(tc.got.DLQURL, "/"+tc.spec.DeadLetter.Name) {
			t.Errorf("%s: urls %s, %s; want names %s, %s", tc.name, tc.got.URL, tc.got.DLQURL, tc.spec.Main.Name, tc.spec.DeadLetter.Name)
		}
		attrs, err := f.SQS.GetQueueAttributes(ctx(t), &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(tc.got.URL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("%s attributes: %v", tc.name, err)
		}
		if want := tc.spec.RedrivePolicy(tc.got.DLQARN); attrs.Attributes["RedrivePolicy"] != want {
			t.Errorf("%s RedrivePolicy = %q, want %q", tc.name, attrs.Attributes["RedrivePolicy"], want)
		}
		for k, v := range tc.spec.Main.Attributes() {
			if attrs.Attributes[k] != v {
				t.Errorf("%s %s = %q, want %q", tc.name, k, attrs.Attributes[k], v)
			}
		}
	}

	// WHEN two creators' messages are sent interleaved to the FIFO queue
	const perGroup = 5
	for i := 0; i < perGroup; i++ {
		for _, g := range []string{"creator-a", "creator-b"} {
			body := fmt.Sprintf("%s-%d", g, i)
			_, err := f.SQS.SendMessage(ctx(t), &sqs.SendMessageInput{
				QueueUrl: aws.String(sys.Workflows.URL), MessageBody: aws.String(body),
				MessageGroupId: aws.String(g), MessageDeduplicationId: aws.String(body),
			})
			if err != nil {
				t.Fatalf("send %s: %v", body, err)
			}
		}
	}

	// THEN a consumer receives each group's messages in the order sent
	got := map[string][]string{}
	for round := 0; round < 50 && len(got["creator-a"])+len(got["creator-b"]) < 2*perGroup; round++ {
		out, err := f.SQS.ReceiveMessage(ctx(t), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(sys.Workflows.URL), MaxNumberOfMessages: 10,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameMessageGroupId},
		})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		for _, m := range out.Messages {
			g := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]
			got[g] = append(got[g], aws.ToString(m.Body))
			if _, err := f.SQS.DeleteMessage(ctx(t), &sqs.DeleteMessageInput{QueueUrl: aws.String(sys.Workflows.URL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
	}
	for _, g := range []string{"creator-a", "creator-b"} {
		var want []string
		for i := 0; i < perGroup; i++ {
			want = append(want, fmt.Sprintf("%s-%d", g, i))
		}
		if fmt.Sprint(got[g]) != fmt.Sprint(want) {
			t.Errorf("group %s received %v, want %v", g, got[g], want)
		}
	}
}

func TestFauxqs_S3PutGet(t *testing.T) {
	// GIVEN fauxqs and a bucket
	f := harness.StartFauxqs(t)
	if _, err := f.S3.CreateBucket(ctx(t), &s3.CreateBucketInput{Bucket: aws.String("media")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	// WHEN an object is written
	_, err := f.S3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("a.txt"), Body: strings.NewReader("hello fan")})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	// THEN it reads back unchanged
	out, err := f.S3.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("a.txt")})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	if string(b) != "hello fan" {
		t.Fatalf("object = %q", b)
	}
}

func TestDynalite_ConditionalPut(t *testing.T) {
	// GIVEN dynalite and a table keyed by messageId
	d := harness.StartDynalite(t)
	_, err := d.DynamoDB.CreateTable(ctx(t), &dynamodb.CreateTableInput{
		TableName:            aws.String("fallback"),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("messageId"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("messageId"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	put := func(content string) error {
		_, err := d.DynamoDB.PutItem(ctx(t), &dynamodb.PutItemInput{
			TableName: aws.String("fallback"),
			Item: map[string]ddbtypes.AttributeValue{
				"messageId": &ddbtypes.AttributeValueMemberS{Value: "m-1"},
				"content":   &ddbtypes.AttributeValueMemberS{Value: content},
			},
			ConditionExpression: aws.String("attribute_not_exists(messageId)"),
		})
		return err
	}
	// WHEN the same id is put twice with attribute_not_exists
	first, second := put("first"), put("second")

	// THEN the first wins and the second is refused, leaving the first intact
	var ccf *ddbtypes.ConditionalCheckFailedException
	if first != nil || !errors.As(second, &ccf) {
		t.Fatalf("puts = %v, %v; want nil, ConditionalCheckFailedException", first, second)
	}
	got, err := d.DynamoDB.GetItem(ctx(t), &dynamodb.GetItemInput{
		TableName: aws.String("fallback"), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"messageId": &ddbtypes.AttributeValueMemberS{Value: "m-1"}},
	})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if c, _ := got.Item["content"].(*ddbtypes.AttributeValueMemberS); c == nil || c.Value != "first" {
		t.Fatalf("item content = %v, want first", got.Item["content"])
	}
}
