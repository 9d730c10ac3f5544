// Package idempotency remembers what a request with an Idempotency-Key
// produced, so a client retry gets the same answer instead of queueing a
// second copy of its messages.
package idempotency

import (
	"context"
	"crypto/sha256"
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

// KeyAttribute is the table's partition key; TTLAttribute its TTL.
const (
	KeyAttribute = "key"
	TTLAttribute = "expiresAt"
)

// Record states.
const (
	StatusInProgress = "in_progress"
	StatusDone       = "done"
)

// Record is what is kept per key.
type Record struct {
	Key         string    `dynamodbav:"key"`
	Status      string    `dynamodbav:"status"`
	RequestHash string    `dynamodbav:"requestHash"`
	StatusCode  int       `dynamodbav:"statusCode,omitempty"`
	Response    string    `dynamodbav:"response,omitempty"`
	CreatedAt   time.Time `dynamodbav:"createdAt"`
	LeaseAt     int64     `dynamodbav:"leaseAt"` // epoch ms of the running attempt's start
	ExpiresAt   int64     `dynamodbav:"expiresAt"`
	// MessageIDs are the ids given to the request's messages, random and
	// stored here: a retry reuses them, a key reused after its record expired
	// gets new ones (ids are unique forever).
	MessageIDs []string `dynamodbav:"messageIds,omitempty"`
	// Outcomes holds, per message, the status it reached ("" when it was
	// neither queued nor stored): a retry sends only the others.
	Outcomes []string `dynamodbav:"outcomes,omitempty"`
}

// DynamoDBAPI is the part of the client the store uses.
type DynamoDBAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Store is the idempotency table.
type Store struct {
	ddb   DynamoDBAPI
	table string
	ttl   time.Duration
	now   func() time.Time
}

// NewStore returns a store keeping records for ttl.
func NewStore(ddb DynamoDBAPI, table string, ttl time.Duration, now func() time.Time) *Store {
	return &Store{ddb: ddb, table: table, ttl: ttl, now: now}
}

// Errors of Begin.
var (
	ErrInProgress = errors.New("a request with this Idempotency-Key is still in progress")
	ErrMismatch   = errors.New("this Idempotency-Key was used with a different request")
)

// Hash fingerprints a request body.
func Hash(body []byte) string {
	sum := sha256.Sum256(body)
	return fmt.Sprintf("%x", sum)
}

// Begin claims key for a request. claimed is true when the caller must do
// the work and then Complete (or Abandon); rec.CreatedAt is then the
// timestamp to give the messages, identical on every attempt of the request.
// When the request was already answered, claimed is false and rec holds the
// answer. ErrInProgress: another attempt is running. ErrMismatch: the key
// came with another body. An attempt that died mid-way (lease older than
// staleAfter) is taken over.
//
// A fresh record gets n random message ids (rec.MessageIDs), stored before
// any message is sent.
func (s *Store) Begin(ctx context.Context, key, requestHash string, staleAfter time.Duration, n int) (rec *Record, claimed bool, err error) {
	now := s.now().UTC()
	fresh, created, err := s.create(ctx, key, requestHash, now, n)
	if err != nil || created {
		return fresh, created, err
	}
	out, err := s.ddb.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		Key: keyOf(key),
	})
	if err != nil {
		return nil, false, fmt.Errorf("idempotency: read: %w", err)
	}
	var existing Record
	if err := attributevalue.UnmarshalMap(out.Item, &existing); err != nil {
		return nil, false, err
	}
	switch {
	case existing.RequestHash != requestHash:
		return nil, false, ErrMismatch
	case existing.Status == StatusDone:
		return &existing, false, nil
	case now.UnixMilli()-existing.LeaseAt < staleAfter.Milliseconds():
		return nil, false, ErrInProgress
	}
	if err := s.takeOver(ctx, key, existing.LeaseAt, now); err != nil {
		return nil, false, err
	}
	return &existing, true, nil
}

// create stores a fresh record for key with n random message ids, unless
// one exists (created false, no error).
func (s *Store) create(ctx context.Context, key, requestHash string, now time.Time, n int) (*Record, bool, error) {
	ids := make([]string, n)
	for i := range ids {
		u, err := uuid.NewRandom()
		if err != nil {
			return nil, false, err
		}
		ids[i] = u.String()
	}
	fresh := Record{Key: key, Status: StatusInProgress, RequestHash: requestHash, CreatedAt: now, LeaseAt: now.UnixMilli(), ExpiresAt: now.Add(s.ttl).Unix(),
		MessageIDs: ids, Outcomes: make([]string, n)}
	av, err := attributevalue.MarshalMap(fresh)
	if err != nil {
		return nil, false, err
	}
	_, err = s.ddb.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: av,
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": KeyAttribute},
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	switch {
	case err == nil:
		return &fresh, true, nil
	case errors.As(err, &ccf):
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("idempotency: begin: %w", err)
}

// takeOver renews the lease of an attempt that died mid-way (its lease
// still at oldLease); ErrInProgress when another attempt took it first.
func (s *Store) takeOver(ctx context.Context, key string, oldLease int64, now time.Time) error {
	_, err := s.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: keyOf(key),
		UpdateExpression:         aws.String("SET leaseAt = :now"),
		ConditionExpression:      aws.String("#s = :ip AND leaseAt = :old"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":now": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":old": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(oldLease, 10)},
			":ip":  &ddbtypes.AttributeValueMemberS{Value: StatusInProgress},
		},
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ErrInProgress
	}
	if err != nil {
		return fmt.Errorf("idempotency: take over: %w", err)
	}
	return nil
}

func keyOf(key string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{KeyAttribute: &ddbtypes.AttributeValueMemberS{Value: key}}
}

// Complete stores the answer given for key.
func (s *Store) Complete(ctx context.Context, key string, statusCode int, response []byte) error {
	_, err := s.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      keyOf(key),
		UpdateExpression:         aws.String("SET #s = :done, statusCode = :c, #r = :r"),
		ExpressionAttributeNames: map[string]string{"#s": "status", "#r": "response"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":done": &ddbtypes.AttributeValueMemberS{Value: StatusDone},
			":c":    &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(statusCode)},
			":r":    &ddbtypes.AttributeValueMemberS{Value: string(response)},
		},
	})
	if err != nil {
		return fmt.Errorf("idempotency: complete: %w", err)
	}
	return nil
}

// Release keeps the request unanswered with what each message reached, and
// lets the next retry take over at once: it sends only the messages whose
// outcome is empty, with the same ids. An answer holding a failure is never
// stored as the answer.
func (s *Store) Release(ctx context.Context, key string, outcomes []string) error {
	av, err := attributevalue.Marshal(outcomes)
	if err != nil {
		return err
	}
	_, err = s.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: keyOf(key),
		UpdateExpression:         aws.String("SET outcomes = :o, leaseAt = :zero"),
		ConditionExpression:      aws.String("#s = :ip"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":o": av, ":zero": &ddbtypes.AttributeValueMemberN{Value: "0"},
			":ip": &ddbtypes.AttributeValueMemberS{Value: StatusInProgress},
		},
	})
	if err != nil {
		return fmt.Errorf("idempotency: release: %w", err)
	}
	return nil
}

// Abandon forgets key after a request that was refused before any message
// was sent (invalid input), so a corrected retry can use it.
func (s *Store) Abandon(ctx context.Context, key string) error {
	_, err := s.ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: keyOf(key),
		ConditionExpression:      aws.String("#s = :ip"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":ip": &ddbtypes.AttributeValueMemberS{Value: StatusInProgress},
		},
	})
	return err
}
