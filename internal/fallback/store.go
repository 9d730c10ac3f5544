// Package fallback keeps messages that could not be queued in a DynamoDB
// table and replays them to the queue exactly once (seed 000 R6.4, R6.5).
//
// An item moves pending → replaying (claimed by one replayer with a lease)
// → replayed, each step a conditional write, so two replay runs racing queue
// an item once. A replayer that dies while holding a claim leaves the item
// to be claimed again when the lease ends; the item's payload is
// byte-identical on every attempt, so the FIFO deduplication id (a hash of
// the payload) drops a copy sent within five minutes.
package fallback

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"
)

// Status of an item.
const (
	StatusPending   = "pending"
	StatusReplaying = "replaying"
	StatusReplayed  = "replayed"
)

// Table attribute names the stack must match.
const (
	KeyAttribute = "messageId"
	TTLAttribute = "expiresAt"
)

// Retention is how long an item is kept (TTL), like the queues' 14 days.
const Retention = 14 * 24 * time.Hour

// Item is one stored message.
type Item struct {
	MessageID  string            `dynamodbav:"messageId"`
	CreatorKey string            `dynamodbav:"creatorKey"`
	Payload    string            `dynamodbav:"payload"`
	Attributes map[string]string `dynamodbav:"attributes,omitempty"`
	Status     string            `dynamodbav:"status"`
	Attempts   int               `dynamodbav:"attempts"`
	LastError  string            `dynamodbav:"lastError,omitempty"`
	CreatedAt  time.Time         `dynamodbav:"createdAt"`
	UpdatedAt  time.Time         `dynamodbav:"updatedAt"`
	ExpiresAt  int64             `dynamodbav:"expiresAt"` // epoch seconds (DynamoDB TTL)
	ClaimToken string            `dynamodbav:"claimToken,omitempty"`
	LeaseUntil int64             `dynamodbav:"leaseUntil,omitempty"` // epoch ms
}

// DynamoDBAPI is the part of the DynamoDB client the store uses.
type DynamoDBAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Store is the fallback table.
type Store struct {
	ddb   DynamoDBAPI
	table string
	now   func() time.Time
	lease time.Duration
}

// NewStore returns a store over table. lease bounds how long a replayer may
// hold an item before another may take it.
func NewStore(ddb DynamoDBAPI, table string, now func() time.Time, lease time.Duration) *Store {
	return &Store{ddb: ddb, table: table, now: now, lease: lease}
}

// ErrExists is returned by Put when the message is already stored.
var ErrExists = errors.New("fallback: message already stored")

// Put stores a message as pending after attempts failed sends.
func (s *Store) Put(ctx context.Context, messageID, creatorKey, payload string, attrs map[string]string, attempts int, lastErr error) error {
	now := s.now().UTC()
	item := Item{
		MessageID: messageID, CreatorKey: creatorKey, Payload: payload, Attributes: attrs,
		Status: StatusPending, Attempts: attempts, CreatedAt: now, UpdatedAt: now,
		ExpiresAt: now.Add(Retention).Unix(),
	}
	if lastErr != nil {
		item.LastError = truncate(lastErr.Error(), 2000)
	}
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return fmt.Errorf("fallback: encode %s: %w", messageID, err)
	}
	_, err = s.ddb.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: av,
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": KeyAttribute},
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrExists
	}
	if err != nil {
		return fmt.Errorf("fallback: store %s: %w", messageID, err)
	}
	return nil
}

// Claimable returns items that are pending, or replaying with an expired
// lease, up to limit. It scans: the table only holds messages SQS refused,
// which is small by design.
func (s *Store) Claimable(ctx context.Context, limit int) ([]Item, error) {
	var out []Item
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := s.ddb.Scan(ctx, &dynamodb.ScanInput{
			TableName:                aws.String(s.table),
			ConsistentRead:           aws.Bool(true),
			FilterExpression:         aws.String("#s = :pending OR (#s = :replaying AND leaseUntil < :now)"),
			ExpressionAttributeNames: map[string]string{"#s": "status"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
				":pending":   &ddbtypes.AttributeValueMemberS{Value: StatusPending},
				":replaying": &ddbtypes.AttributeValueMemberS{Value: StatusReplaying},
				":now":       &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(s.now().UnixMilli(), 10)},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return nil, fmt.Errorf("fallback: scan: %w", err)
		}
		var items []Item
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, fmt.Errorf("fallback: decode: %w", err)
		}
		out = append(out, items...)
		if len(out) >= limit {
			return out[:limit], nil
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		start = page.LastEvaluatedKey
	}
}

// PendingCount counts items not yet replayed (Select COUNT: no item is
// read back).
func (s *Store) PendingCount(ctx context.Context) (int, error) {
	total := 0
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := s.ddb.Scan(ctx, &dynamodb.ScanInput{
			TableName: aws.String(s.table), Select: ddbtypes.SelectCount, ConsistentRead: aws.Bool(true),
			FilterExpression:         aws.String("#s = :pending OR #s = :replaying"),
			ExpressionAttributeNames: map[string]string{"#s": "status"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
				":pending":   &ddbtypes.AttributeValueMemberS{Value: StatusPending},
				":replaying": &ddbtypes.AttributeValueMemberS{Value: StatusReplaying},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return 0, fmt.Errorf("fallback: count: %w", err)
		}
		total += int(page.Count)
		if len(page.LastEvaluatedKey) == 0 {
			return total, nil
		}
		start = page.LastEvaluatedKey
	}
}

// Claim takes an item for one replayer. It returns false if another
// replayer got it first (or it was replayed meanwhile).
func (s *Store) Claim(ctx context.Context, messageID string) (token string, ok bool, err error) {
	token = uuid.NewString()
	now := s.now()
	_, err = s.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(messageID),
		UpdateExpression:         aws.String("SET #s = :replaying, claimToken = :t, leaseUntil = :lease, updatedAt = :now"),
		ConditionExpression:      aws.String("#s = :pending OR (#s = :replaying AND leaseUntil < :nowms)"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":pending":   &ddbtypes.AttributeValueMemberS{Value: StatusPending},
			":replaying": &ddbtypes.AttributeValueMemberS{Value: StatusReplaying},
			":t":         &ddbtypes.AttributeValueMemberS{Value: token},
			":lease":     &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(s.lease).UnixMilli(), 10)},
			":nowms":     &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":now":       &ddbtypes.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339Nano)},
		},
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("fallback: claim %s: %w", messageID, err)
	}
	return token, true, nil
}

// Finish records the outcome of a claimed item's send: replayed, or back to
// pending with one more attempt and the error.
func (s *Store) Finish(ctx context.Context, messageID, token string, sendErr error) error {
	now := s.now().UTC().Format(time.RFC3339Nano)
	in := &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(messageID),
		ConditionExpression:      aws.String("claimToken = :t"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":t":   &ddbtypes.AttributeValueMemberS{Value: token},
			":now": &ddbtypes.AttributeValueMemberS{Value: now},
		},
	}
	if sendErr == nil {
		in.UpdateExpression = aws.String("SET #s = :done, updatedAt = :now REMOVE claimToken, leaseUntil")
		in.ExpressionAttributeValues[":done"] = &ddbtypes.AttributeValueMemberS{Value: StatusReplayed}
	} else {
		in.UpdateExpression = aws.String("SET #s = :pending, updatedAt = :now, lastError = :e ADD attempts :one REMOVE claimToken, leaseUntil")
		in.ExpressionAttributeValues[":pending"] = &ddbtypes.AttributeValueMemberS{Value: StatusPending}
		in.ExpressionAttributeValues[":e"] = &ddbtypes.AttributeValueMemberS{Value: truncate(sendErr.Error(), 2000)}
		in.ExpressionAttributeValues[":one"] = &ddbtypes.AttributeValueMemberN{Value: "1"}
	}
	if _, err := s.ddb.UpdateItem(ctx, in); err != nil {
		return fmt.Errorf("fallback: finish %s: %w", messageID, err)
	}
	return nil
}

// Sender queues one stored message.
type Sender func(ctx context.Context, item Item) error

// ReplayResult counts what one replay run did.
type ReplayResult struct {
	Replayed, Failed, Skipped int
}

// Replay claims up to limit items and sends each; an item another replayer
// claimed first is skipped.
func (s *Store) Replay(ctx context.Context, send Sender, limit int) (ReplayResult, error) {
	var res ReplayResult
	items, err := s.Claimable(ctx, limit)
	if err != nil {
		return res, err
	}
	for _, it := range items {
		token, ok, err := s.Claim(ctx, it.MessageID)
		if err != nil {
			return res, err
		}
		if !ok {
			res.Skipped++
			continue
		}
		sendErr := send(ctx, it)
		if err := s.Finish(ctx, it.MessageID, token, sendErr); err != nil {
			return res, err
		}
		if sendErr != nil {
			res.Failed++
		} else {
			res.Replayed++
		}
	}
	return res, nil
}

func key(messageID string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{KeyAttribute: &ddbtypes.AttributeValueMemberS{Value: messageID}}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
