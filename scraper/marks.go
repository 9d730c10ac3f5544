package scraper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/scraper/settings"
)

// MarkStore keeps, where a Redis that forgets (a failover losing its last
// writes, a node replaced empty) cannot lose them, the attempt mark of a
// click whose outcome is still unknown and the sent mark of a message sent.
// The Redis ledger stays the hot path: an attempt mark is written here
// only when a message leaves a task with its click unresolved (its
// read-back could not run, or could not tell); a sent mark, which replaces
// any attempt mark, when a processing settled its message sent (one write
// per message sent: a message whose queue delete then fails is not sent
// again after Redis lost its data). Both are read only before a
// redelivered message (or one accepted before Redis last lost its data)
// would be clicked without a Redis mark. An attempt mark is deleted once
// the click is settled not sent, unless it is a later click's; a sent mark
// expires.
type MarkStore interface {
	Get(ctx context.Context, id string) (Stored, bool, error)
	Put(ctx context.Context, id, creator string, m onlyfans.Mark) error
	PutSent(ctx context.Context, id, creator string) error
	Delete(ctx context.Context, id string, settledAt int64) error
}

// Stored is a message's item in the mark store: sent, or the attempt mark
// of its unresolved click.
type Stored struct {
	Sent bool
	Mark onlyfans.Mark
}

// Attempts table attributes: scraper/settings defines them, for the CDK
// stack's table too.
const (
	AttemptsKeyAttribute = settings.AttemptsKeyAttribute
	AttemptsTTLAttribute = settings.AttemptsTTLAttribute
)

// DynamoDBAPI is the part of the DynamoDB client the mark store uses.
type DynamoDBAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// DynamoMarks is a MarkStore on a DynamoDB table keyed by messageId. An
// item expires (the table's TTL) after the ledger's retention, like the
// Redis marks: a leftover of a resolution whose delete failed goes away
// by itself.
type DynamoMarks struct {
	client DynamoDBAPI
	table  string
	ttl    time.Duration
	now    func() time.Time
}

// NewDynamoMarks returns the store on table.
func NewDynamoMarks(client DynamoDBAPI, table string, ttl time.Duration, now func() time.Time) *DynamoMarks {
	return &DynamoMarks{client: client, table: table, ttl: ttl, now: now}
}

func (d *DynamoMarks) key(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{AttemptsKeyAttribute: &ddbtypes.AttributeValueMemberS{Value: id}}
}

// Get reads the message's item with a strongly consistent read (the task
// that released the message wrote it a moment ago).
func (d *DynamoMarks) Get(ctx context.Context, id string) (Stored, bool, error) {
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table), Key: d.key(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Stored{}, false, fmt.Errorf("attempt marks: get: %w", err)
	}
	if out.Item == nil {
		return Stored{}, false, nil
	}
	if _, sent := out.Item[sentAttribute]; sent {
		return Stored{Sent: true}, true, nil
	}
	s, _ := out.Item["mark"].(*ddbtypes.AttributeValueMemberS)
	if s == nil {
		return Stored{Mark: parseMark("")}, true, nil
	}
	return Stored{Mark: parseMark(s.Value)}, true, nil
}

// sentAttribute holds when the message was settled sent (a sent item has
// no mark).
const sentAttribute = "sentAt"

// PutSent records that the message was sent, replacing any attempt mark.
func (d *DynamoMarks) PutSent(ctx context.Context, id, creator string) error {
	now := d.now()
	item := d.key(id)
	item[sentAttribute] = &ddbtypes.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)}
	item["creatorId"] = &ddbtypes.AttributeValueMemberS{Value: creator}
	item[AttemptsTTLAttribute] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d.ttl).Unix(), 10)}
	if _, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table), Item: item}); err != nil {
		return fmt.Errorf("attempt marks: put sent: %w", err)
	}
	return nil
}

// answeredAttribute is set on an item whose mark is Answered (found sent,
// its settling waiting): a mark that is not never replaces it.
const answeredAttribute = "answered"

// Put writes the message's mark (the latest click's). It never replaces
// a sent item (review 22 U B: a task's older memory mark put over the
// sent mark of another task's click, and the sent message was read back
// against the older click, its anchor scrolled out, and dead-lettered).
// A mark that is not Answered does not replace a stored one that is
// (review 22 N: a processing holding only Redis's mark from before the
// click overwrote the proof that the click was sent, and a read-back
// dead-lettered it), nor the mark of a later click (review 22 U A: a task
// whose read of the store was refused put its own older click over
// another task's later one, read back against the older, and clicked a
// third time). A mark it leaves in place is not an error: the store holds
// what a later processing must judge (answeredSent reads it).
func (d *DynamoMarks) Put(ctx context.Context, id, creator string, m onlyfans.Mark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	now := d.now()
	item := d.key(id)
	item["mark"] = &ddbtypes.AttributeValueMemberS{Value: string(b)}
	item["creatorId"] = &ddbtypes.AttributeValueMemberS{Value: creator}
	item["writtenAt"] = &ddbtypes.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)}
	item[clickedAtAttribute] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(m.ClickedAt, 10)}
	item[AttemptsTTLAttribute] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(d.ttl).Unix(), 10)}
	in := &dynamodb.PutItemInput{
		TableName:                aws.String(d.table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#sent)"),
		ExpressionAttributeNames: map[string]string{"#sent": sentAttribute},
	}
	if m.Answered {
		item[answeredAttribute] = &ddbtypes.AttributeValueMemberBOOL{Value: true}
	} else {
		in.ConditionExpression = aws.String("attribute_not_exists(#sent) AND attribute_not_exists(#answered) AND " +
			"(attribute_not_exists(#clicked) OR #clicked <= :clicked)")
		in.ExpressionAttributeNames["#answered"] = answeredAttribute
		in.ExpressionAttributeNames["#clicked"] = clickedAtAttribute
		in.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{
			":clicked": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(m.ClickedAt, 10)},
		}
	}
	_, err = d.client.PutItem(ctx, in)
	var kept *ddbtypes.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &kept) {
		return fmt.Errorf("attempt marks: put: %w", err)
	}
	return nil
}

// clickedAtAttribute is the stored mark's ClickedAt (Unix ms), which
// Delete's condition compares.
const clickedAtAttribute = "clickedAt"

// Delete removes the message's attempt mark once a processing settled
// its clicks up to settledAt (the latest one's ClickedAt) not sent. It
// leaves a sent item, an Answered one and the mark of a later click: that
// is another processing's click, which may still land (review 22 T A: a
// task reading back its own older click, which Redis had lost, deleted
// the only record of another task's later one, and the message was
// clicked a third time). A mark it leaves expires with its TTL.
func (d *DynamoMarks) Delete(ctx context.Context, id string, settledAt int64) error {
	_, err := d.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(d.table),
		Key:       d.key(id),
		ConditionExpression: aws.String("attribute_not_exists(#sent) AND attribute_not_exists(#answered) AND " +
			"(attribute_not_exists(#clicked) OR #clicked <= :settled)"),
		ExpressionAttributeNames: map[string]string{
			"#sent": sentAttribute, "#answered": answeredAttribute, "#clicked": clickedAtAttribute,
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":settled": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(settledAt, 10)},
		},
	})
	var kept *ddbtypes.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &kept) {
		return fmt.Errorf("attempt marks: delete: %w", err)
	}
	return nil
}
