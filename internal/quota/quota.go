// Package quota throttles with the generic cell rate algorithm (GCRA) kept
// in DynamoDB, so that a limit holds across every Lambda instance of the API.
//
// One item per key holds tat, the theoretical arrival time (ms): each unit
// taken pushes it by Interval; a take is allowed while tat − now stays within
// Burst intervals. Two uses:
//   - per caller: requests per second with a burst (429 + Retry-After);
//   - per creator: messages waiting. Messages leave a creator's queue at
//     most Limit per Window, so with Interval = Window/Limit, (tat − now) /
//     Interval never exceeds the messages truly waiting: refusing when it
//     would pass Burst (e.g. 10,000 ≈ 17 h at 10/min) caps the backlog one
//     client can build.
//
// A take is two conditional UpdateItems tried in turn (an idle key starts
// from now; a busy key's tat is pushed), and on a refusal a consistent
// read. Which update goes first is a hint kept per instance (the key was
// busy when this instance last took from it), so an allowed take is one
// call whether the key is idle or busy. The table alone decides each
// condition: a hint only orders the calls. tat never decreases, so a hint
// (a tat seen) never says busy when the key is idle; another instance's
// takes can make a key busy unseen, which costs the other update once.
package quota

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDBAPI is the calls the store makes.
type DynamoDBAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// Rule is one limit.
type Rule struct {
	// Interval is the time one unit occupies (1/rate).
	Interval time.Duration
	// Burst is how many units may be outstanding at once.
	Burst int
}

// Store keeps the cells in a table whose string partition key is keyAttr
// and whose TTL attribute is ttlAttr (the API's idempotency table).
type Store struct {
	ddb              DynamoDBAPI
	table            string
	keyAttr, ttlAttr string
	now              func() time.Time

	mu sync.Mutex
	// busyUntil is, per key, the tat (ms) this instance last knew: the key
	// is busy until then. A hint only (see the package comment).
	busyUntil map[string]int64
}

// maxHints bounds busyUntil; past it the hints start over.
const maxHints = 10_000

func (s *Store) busyHint(key string, now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busyUntil[key] >= now
}

func (s *Store) remember(key string, tat int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busyUntil == nil || len(s.busyUntil) >= maxHints {
		s.busyUntil = map[string]int64{}
	}
	s.busyUntil[key] = tat
}

// NewStore returns a store.
func NewStore(ddb DynamoDBAPI, table, keyAttr, ttlAttr string, now func() time.Time) *Store {
	return &Store{ddb: ddb, table: table, keyAttr: keyAttr, ttlAttr: ttlAttr, now: now}
}

// ErrExceedsBurst is returned by Take when n is more than the rule's burst:
// such a request can never be admitted and must be refused, not let
// through as if the store were down.
var ErrExceedsBurst = errors.New("quota: more units than the burst admits")

// Take asks for n units of key under rule. When refused, retryAfter is when
// n units would fit; nothing was taken.
func (s *Store) Take(ctx context.Context, key string, n int, rule Rule) (allowed bool, retryAfter time.Duration, err error) {
	if n <= 0 {
		return true, 0, nil
	}
	if rule.Interval <= 0 {
		return false, 0, fmt.Errorf("quota: rule %+v has no interval", rule)
	}
	if rule.Burst < n {
		// What the caller asked can never fit: not a store failure.
		return false, 0, fmt.Errorf("%w: %d units, burst %d", ErrExceedsBurst, n, rule.Burst)
	}
	now := s.now().UnixMilli()
	inc := int64(n) * rule.Interval.Milliseconds()
	ceiling := now + int64(rule.Burst)*rule.Interval.Milliseconds() // tat may not pass this
	// An idle or new key (nothing outstanding): start from now.
	idle := func() (bool, error) {
		return s.update(ctx, key, "SET tat = :start, #ttl = :ttl", "attribute_not_exists(tat) OR tat < :now", map[string]int64{
			":start": now + inc, ":now": now, ":ttl": (now+inc)/1000 + 86400,
		})
	}
	// A busy key: push tat if it stays under the ceiling.
	busy := func() (bool, error) {
		return s.update(ctx, key, "SET tat = tat + :inc, #ttl = :ttl", "tat >= :now AND tat <= :max", map[string]int64{
			":inc": inc, ":now": now, ":max": ceiling - inc, ":ttl": ceiling/1000 + 86400,
		})
	}
	first, second := idle, busy
	if s.busyHint(key, now) {
		first, second = busy, idle
	}
	// bounded: another instance can flip the key between our calls
	for range 3 {
		for _, try := range []func() (bool, error){first, second} {
			ok, err := try()
			if err != nil {
				return false, 0, err
			}
			if ok {
				// tat is now at least now+inc: busy until then.
				s.remember(key, now+inc)
				return true, 0, nil
			}
		}
		tat, found, err := s.tat(ctx, key)
		if err != nil {
			return false, 0, err
		}
		if found && tat >= now { // busy and over the ceiling
			s.remember(key, tat)
			return false, time.Duration(tat+inc-ceiling) * time.Millisecond, nil
		}
	}
	return false, rule.Interval, nil
}

// Count adds n to the counter of key for the current fixed window of length
// window, allowed while it stays at most limit: one conditional update. It
// lets up to 2×limit through across a window boundary, which is what a
// per-caller request-rate guard needs (abuse, not precision).
func (s *Store) Count(ctx context.Context, key string, n, limit int, window time.Duration) (allowed bool, retryAfter time.Duration, err error) {
	now := s.now()
	start := now.Truncate(window)
	ok, err := s.update(ctx, key+"#"+strconv.FormatInt(start.UnixMilli(), 10), "ADD hits :n SET #ttl = :ttl", "attribute_not_exists(hits) OR hits <= :max", map[string]int64{
		":n": int64(n), ":max": int64(limit - n), ":ttl": start.Add(window).Unix() + 3600,
	})
	if err != nil || ok {
		return ok, 0, err
	}
	return false, start.Add(window).Sub(now), nil
}

// update runs one conditional update; false without error when the
// condition failed.
func (s *Store) update(ctx context.Context, key, expr, cond string, vals map[string]int64) (bool, error) {
	av := make(map[string]ddbtypes.AttributeValue, len(vals))
	for k, v := range vals {
		av[k] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
	}
	_, err := s.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: s.key(key),
		UpdateExpression: aws.String(expr), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#ttl": s.ttlAttr}, ExpressionAttributeValues: av,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("quota: %w", err)
	}
	return true, nil
}

func (s *Store) tat(ctx context.Context, key string) (int64, bool, error) {
	out, err := s.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: s.key(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, false, fmt.Errorf("quota: %w", err)
	}
	v, ok := out.Item["tat"].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return 0, false, nil
	}
	tat, err := strconv.ParseInt(v.Value, 10, 64)
	return tat, err == nil, nil
}

func (s *Store) key(k string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{s.keyAttr: &ddbtypes.AttributeValueMemberS{Value: k}}
}
