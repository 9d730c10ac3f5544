// Package fallback keeps messages that could not be queued in a DynamoDB
// table and replays them to the queue exactly once (seed 000 R6.4, R6.5).
//
// An item moves pending → replaying (claimed by one replayer with a lease)
// → replayed, each step a conditional write, so two replay runs racing queue
// an item once. A replayer that dies while holding a claim leaves the item
// to be claimed again when the lease ends; the replay queues to the intake
// queue, whose FIFO deduplication id is the messageId, so a copy sent
// within five minutes is dropped.
//
// Nothing waiting expires: a pending item and a creator's backlog item
// carry no TTL; an item gets its TTL (Retention) only when it is marked
// replayed, so an accepted message is never deleted unsent and a creator's
// sequences never restart while its items are in the table.
//
// Order (docs/design.md, "One order rule"): every item carries seq, its
// creator's acceptance sequence, reserved from the creator's backlog item
// (one atomic counter per creator, so seqs follow the order of the API's
// answers). The replay queries each creator's items by seq (index
// CreatorIndex) and queues them in that order, creators in parallel; while
// a creator's backlog says reserved > done it still has messages waiting,
// and the API stores that creator's new messages here too, behind them,
// instead of letting them overtake.
package fallback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
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
	// CreatorIndex is the global secondary index (CreatorAttribute,
	// SeqAttribute) the replay queries a creator's items by, in order.
	CreatorIndex     = "creator-seq"
	CreatorAttribute = "creatorKey"
	SeqAttribute     = "seq"
)

// backlogPrefix keys a creator's backlog item (message ids are UUIDs, so
// they never collide with it). A backlog item has neither creatorKey nor
// seq, so it is not in CreatorIndex.
const backlogPrefix = "creator#"

// Retention is how long a replayed item is kept (TTL from its replay), like
// the queues' 14 days.
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
	// ExpiresAt (epoch seconds, DynamoDB TTL) is set only once the item
	// is replayed: a pending item never expires.
	ExpiresAt  int64  `dynamodbav:"expiresAt,omitempty"`
	ClaimToken string `dynamodbav:"claimToken,omitempty"`
	LeaseUntil int64  `dynamodbav:"leaseUntil,omitempty"` // epoch ms
	// Seq is the creator's acceptance sequence (1, 2, ...): the replay
	// queues a creator's items in Seq order.
	Seq int64 `dynamodbav:"seq"`
}

// Backlog is a creator's order state: the last acceptance sequence reserved
// for the fallback table and the last one replayed (or given up as never
// stored). Waiting while Reserved > Done.
type Backlog struct {
	Creator    string `dynamodbav:"backlogCreator"`
	Reserved   int64  `dynamodbav:"reserved"`
	Done       int64  `dynamodbav:"done"`
	ReservedAt int64  `dynamodbav:"reservedAt"` // epoch ms of the last reservation
}

// Waiting reports whether the creator has messages in the table that the
// replay has not queued yet: its new messages must join them.
func (b Backlog) Waiting() bool { return b.Reserved > b.Done }

// DynamoDBAPI is the part of the DynamoDB client the store uses.
type DynamoDBAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// Store is the fallback table.
type Store struct {
	ddb   DynamoDBAPI
	table string
	now   func() time.Time
	lease time.Duration
	// Log receives the replay's gap decisions (nil: discarded).
	Log *slog.Logger
	// Parallel is how many creators one replay run serves at once.
	Parallel int
}

// NewStore returns a store over table. lease bounds how long a replayer may
// hold an item before another may take it; it is also how long the replay
// waits for a reserved sequence whose item is missing (a request that
// reserved it and failed to store it, or an index not caught up yet) before
// giving it up: longer than any API request lives.
func NewStore(ddb DynamoDBAPI, table string, now func() time.Time, lease time.Duration) *Store {
	return &Store{ddb: ddb, table: table, now: now, lease: lease, Parallel: 8}
}

func (s *Store) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// ErrExists is returned by Put when the message is already stored.
var ErrExists = errors.New("fallback: message already stored")

// Put stores a message as pending after attempts failed sends, with seq,
// the acceptance sequence Reserve gave it.
func (s *Store) Put(ctx context.Context, messageID, creatorKey string, seq int64, payload string, attrs map[string]string, attempts int, lastErr error) error {
	now := s.now().UTC()
	item := Item{
		MessageID: messageID, CreatorKey: creatorKey, Payload: payload, Attributes: attrs,
		Status: StatusPending, Attempts: attempts, CreatedAt: now, UpdatedAt: now, Seq: seq,
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

// claimableFilter selects items a replay may take: pending, or replaying
// under an expired lease (values from claimableValues).
const claimableFilter = "#s = :pending OR (#s = :replaying AND leaseUntil < :now)"

func (s *Store) claimableValues() map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		":pending":   &ddbtypes.AttributeValueMemberS{Value: StatusPending},
		":replaying": &ddbtypes.AttributeValueMemberS{Value: StatusReplaying},
		":now":       &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(s.now().UnixMilli(), 10)},
	}
}

// Claimable returns items that are pending, or replaying with an expired
// lease, up to limit, in no particular order (operators' listing; the
// replay orders by Query). It scans: the table only holds messages SQS
// refused, which is small by design.
func (s *Store) Claimable(ctx context.Context, limit int) ([]Item, error) {
	var out []Item
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := s.ddb.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(s.table),
			ConsistentRead:            aws.Bool(true),
			FilterExpression:          aws.String(claimableFilter),
			ExpressionAttributeNames:  map[string]string{"#s": "status"},
			ExpressionAttributeValues: s.claimableValues(),
			ExclusiveStartKey:         start,
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
			FilterExpression:         aws.String("#s = :pending OR #s = :replaying"), // backlog items have no status
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
	at := s.now().UTC()
	now := at.Format(time.RFC3339Nano)
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
		// The TTL starts only now: an item is never deleted unsent.
		in.UpdateExpression = aws.String("SET #s = :done, updatedAt = :now, #ttl = :ttl REMOVE claimToken, leaseUntil")
		in.ExpressionAttributeNames["#ttl"] = TTLAttribute
		in.ExpressionAttributeValues[":done"] = &ddbtypes.AttributeValueMemberS{Value: StatusReplayed}
		in.ExpressionAttributeValues[":ttl"] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(at.Add(Retention).Unix(), 10)}
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

// Backlogs reads the backlog items of creators in one consistent
// BatchGetItem (the one DynamoDB call the API adds to a send). A creator
// without an item has nothing waiting.
func (s *Store) Backlogs(ctx context.Context, creators []string) (map[string]Backlog, error) {
	out := make(map[string]Backlog, len(creators))
	var keys []map[string]ddbtypes.AttributeValue
	for _, c := range creators {
		if _, dup := out[c]; dup {
			continue
		}
		out[c] = Backlog{Creator: c}
		keys = append(keys, key(backlogPrefix+c))
	}
	for start := 0; start < len(keys); start += 100 {
		pending := map[string]ddbtypes.KeysAndAttributes{s.table: {Keys: keys[start:min(start+100, len(keys))], ConsistentRead: aws.Bool(true)}}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt == 5 {
				return nil, errors.New("fallback: backlogs: keys left unprocessed")
			}
			page, err := s.ddb.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, fmt.Errorf("fallback: backlogs: %w", err)
			}
			var got []Backlog
			if err := attributevalue.UnmarshalListOfMaps(page.Responses[s.table], &got); err != nil {
				return nil, fmt.Errorf("fallback: decode backlog: %w", err)
			}
			for _, b := range got {
				out[b.Creator] = b
			}
			pending = page.UnprocessedKeys
			if len(pending) > 0 {
				time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
			}
		}
	}
	return out, nil
}

// Reserve takes the next n acceptance sequences of creator (one atomic
// update) and returns the first; the creator is waiting from then on. The
// backlog item has no TTL (one small item per creator; it also removes one
// an older version set): if it expired, the creator's sequences would
// restart beside its old items.
func (s *Store) Reserve(ctx context.Context, creator string, n int) (first int64, err error) {
	now := s.now()
	out, err := s.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(s.table),
		Key:                      key(backlogPrefix + creator),
		UpdateExpression:         aws.String("ADD reserved :n SET reservedAt = :now, backlogCreator = :c, done = if_not_exists(done, :zero) REMOVE #ttl"),
		ExpressionAttributeNames: map[string]string{"#ttl": TTLAttribute},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":n":    &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(n)},
			":now":  &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":c":    &ddbtypes.AttributeValueMemberS{Value: creator},
			":zero": &ddbtypes.AttributeValueMemberN{Value: "0"},
		},
		ReturnValues: ddbtypes.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, fmt.Errorf("fallback: reserve for %s: %w", creator, err)
	}
	v, ok := out.Attributes["reserved"].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("fallback: reserve for %s: no counter returned", creator)
	}
	last, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("fallback: reserve for %s: %w", creator, err)
	}
	return last - int64(n) + 1, nil
}

// Sender queues one stored message.
type Sender func(ctx context.Context, item Item) error

// ReplayResult counts what one replay run did.
type ReplayResult struct {
	Replayed, Failed, Skipped int
}

// Replay queues waiting items: each waiting creator's items in acceptance
// order (a Query by seq), up to limit items per creator per run, creators
// in parallel (Parallel at once), at most limit creators per run. The
// budget is per creator so that one run catches up every creator that adds
// fewer than limit items between runs (a creator may add 10 a minute): a
// global budget let creators that joined the table stay behind for good.
// A creator stops at its first item that fails to queue (it goes back to
// pending and is the first of the next run), at an item another replayer
// holds, and at a missing sequence younger than the lease or still in the
// base table, so no item of a creator is ever queued before an earlier one.
func (s *Store) Replay(ctx context.Context, send Sender, limit int) (ReplayResult, error) {
	creators, lowest, err := s.waitingCreators(ctx, limit)
	if err != nil {
		return ReplayResult{}, err
	}
	var (
		mu   sync.Mutex
		res  ReplayResult
		errs []error
	)
	sem := make(chan struct{}, max(1, s.Parallel))
	var wg sync.WaitGroup
	for _, c := range creators {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			budget := limit
			take := func() bool {
				if budget <= 0 {
					return false
				}
				budget--
				return true
			}
			r, err := s.replayCreator(ctx, c, lowest[c], send, take)
			mu.Lock()
			defer mu.Unlock()
			res.Replayed, res.Failed, res.Skipped = res.Replayed+r.Replayed, res.Failed+r.Failed, res.Skipped+r.Skipped
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// waitingCreators finds the creators with something to replay: a pending
// item (or one whose replayer's lease ended) or a backlog not done, and the
// lowest seq of a pending item seen per creator (so an item behind its
// creator's done is still found). It scans, with a projection, only to
// learn who waits; the order comes from each creator's Query.
func (s *Store) waitingCreators(ctx context.Context, limit int) ([]string, map[string]int64, error) {
	seen := map[string]bool{}
	lowest := map[string]int64{}
	var out []string
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := s.ddb.Scan(ctx, &dynamodb.ScanInput{
			TableName:                 aws.String(s.table),
			ConsistentRead:            aws.Bool(true),
			ProjectionExpression:      aws.String("creatorKey, seq, backlogCreator, reserved, done"),
			FilterExpression:          aws.String(claimableFilter + " OR attribute_exists(backlogCreator)"),
			ExpressionAttributeNames:  map[string]string{"#s": "status"},
			ExpressionAttributeValues: s.claimableValues(),
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("fallback: scan: %w", err)
		}
		var rows []struct {
			CreatorKey     string `dynamodbav:"creatorKey"`
			Seq            int64  `dynamodbav:"seq"`
			BacklogCreator string `dynamodbav:"backlogCreator"`
			Reserved       int64  `dynamodbav:"reserved"`
			Done           int64  `dynamodbav:"done"`
		}
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &rows); err != nil {
			return nil, nil, fmt.Errorf("fallback: decode: %w", err)
		}
		for _, r := range rows {
			c := r.CreatorKey
			if r.BacklogCreator != "" {
				if r.Reserved <= r.Done {
					continue
				}
				c = r.BacklogCreator
			} else if c != "" && r.Seq > 0 && (lowest[c] == 0 || r.Seq < lowest[c]) {
				lowest[c] = r.Seq
			}
			if c != "" && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
		if len(out) >= limit || len(page.LastEvaluatedKey) == 0 {
			slices.Sort(out)
			return out[:min(len(out), limit)], lowest, nil
		}
		start = page.LastEvaluatedKey
	}
}

func (s *Store) backlog(ctx context.Context, creator string) (Backlog, error) {
	out, err := s.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key(backlogPrefix + creator), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Backlog{}, fmt.Errorf("fallback: backlog of %s: %w", creator, err)
	}
	b := Backlog{Creator: creator}
	if out.Item != nil {
		if err := attributevalue.UnmarshalMap(out.Item, &b); err != nil {
			return Backlog{}, fmt.Errorf("fallback: decode backlog of %s: %w", creator, err)
		}
	}
	return b, nil
}

// storedBetween reports whether the base table holds an item of creator
// with a seq in [from, to]: a consistent Scan, because the index the replay
// queries is eventually consistent and may not show a stored item yet. It
// runs only when a reserved sequence is missing from the index past the
// lease (a rare path), never per item.
func (s *Store) storedBetween(ctx context.Context, creator string, from, to int64) (bool, error) {
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := s.ddb.Scan(ctx, &dynamodb.ScanInput{
			TableName: aws.String(s.table), ConsistentRead: aws.Bool(true), Select: ddbtypes.SelectCount,
			FilterExpression: aws.String("creatorKey = :c AND seq BETWEEN :from AND :to"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
				":c":    &ddbtypes.AttributeValueMemberS{Value: creator},
				":from": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(from, 10)},
				":to":   &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(to, 10)},
			},
			ExclusiveStartKey: start,
		})
		if err != nil {
			return false, fmt.Errorf("fallback: check sequences of %s: %w", creator, err)
		}
		if page.Count > 0 {
			return true, nil
		}
		if len(page.LastEvaluatedKey) == 0 {
			return false, nil
		}
		start = page.LastEvaluatedKey
	}
}

// giveUp decides whether the reserved sequences from..to of creator, not in
// the index, are given up: only when they were reserved more than the lease
// ago (reservedAt, epoch ms, of the evidence: a later item's creation or
// the backlog's last reservation) and a consistent read of the base table
// finds none of them (the index may lag behind it).
func (s *Store) giveUp(ctx context.Context, creator string, from, to, reservedAt int64) (bool, error) {
	if s.now().UnixMilli()-reservedAt < s.lease.Milliseconds() {
		return false, nil
	}
	stored, err := s.storedBetween(ctx, creator, from, to)
	if err != nil {
		return false, err
	}
	if stored {
		s.log().Info("fallback replay: the index does not show stored sequences yet; waiting", "creator_id", creator, "from", from, "to", to)
		return false, nil
	}
	s.log().Warn("fallback replay: reserved sequences never stored, skipped", "creator_id", creator, "from", from, "to", to)
	return true, nil
}

// replayCreator queues creator's items after its backlog's done, in seq
// order, while take allows, then moves done past what it queued. lowest
// (0: none) is the lowest seq of a pending item of creator the run's scan
// saw: an item behind done (stored after its sequence was given up, or a
// sequence reused after a backlog item was lost) is queued too, late
// rather than never.
func (s *Store) replayCreator(ctx context.Context, creator string, lowest int64, send Sender, take func() bool) (ReplayResult, error) {
	b, err := s.backlog(ctx, creator)
	if err != nil {
		return ReplayResult{}, err
	}
	run := &creatorRun{s: s, creator: creator, send: send, take: take, next: b.Done + 1}
	from := run.next
	if lowest > 0 && lowest < from {
		from = lowest
		s.log().Warn("fallback replay: a pending item behind its creator's done; queued late", "creator_id", creator, "seq", lowest, "done", b.Done)
	}
	stopped, err := run.items(ctx, from)
	if err != nil {
		return run.res, err
	}
	if !stopped && run.next <= b.Reserved {
		// The last sequences were reserved and the index shows no item.
		give, err := s.giveUp(ctx, creator, run.next, b.Reserved, b.ReservedAt)
		if err != nil {
			return run.res, errors.Join(err, s.advance(ctx, creator, run.next-1, 0))
		}
		if give {
			return run.res, s.advance(ctx, creator, b.Reserved, b.Reserved)
		}
	}
	return run.res, s.advance(ctx, creator, run.next-1, 0)
}

// creatorRun is one replay of one creator's items.
type creatorRun struct {
	s       *Store
	creator string
	send    Sender
	take    func() bool
	res     ReplayResult
	next    int64 // the sequence that must be queued next
}

// items queues the creator's items from seq from on, in seq order, and
// reports whether it stopped before the last one. An error of an item's
// step comes back with done moved past what was queued.
func (r *creatorRun) items(ctx context.Context, from int64) (stopped bool, err error) {
	var start map[string]ddbtypes.AttributeValue
	for {
		page, err := r.s.ddb.Query(ctx, &dynamodb.QueryInput{
			TableName: aws.String(r.s.table), IndexName: aws.String(CreatorIndex),
			KeyConditionExpression: aws.String("creatorKey = :c AND seq >= :from"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
				":c":    &ddbtypes.AttributeValueMemberS{Value: r.creator},
				":from": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(from, 10)},
			},
			ScanIndexForward: aws.Bool(true), Limit: aws.Int32(25), ExclusiveStartKey: start,
		})
		if err != nil {
			return true, fmt.Errorf("fallback: query %s: %w", r.creator, err)
		}
		var items []Item
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return true, fmt.Errorf("fallback: decode: %w", err)
		}
		for _, it := range items {
			ok, err := r.item(ctx, it)
			if err != nil {
				return true, errors.Join(err, r.s.advance(ctx, r.creator, r.next-1, 0))
			}
			if !ok {
				return true, nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return false, nil
		}
		start = page.LastEvaluatedKey
	}
}

// item queues one item in its place; false means the creator stops here.
func (r *creatorRun) item(ctx context.Context, it Item) (bool, error) {
	if it.Seq < r.next {
		// Behind done, or a second item with a sequence already passed:
		// queue it unless replayed (never lose it).
		return r.s.replayItem(ctx, it, r.send, r.take, &r.res)
	}
	if it.Seq > r.next {
		// Sequences next..it.Seq-1 were reserved but the index does not
		// show their items: the request that reserved them failed to store
		// them (it answered "failed": nothing accepted), or the index has
		// not caught up. A later item stored more than the lease ago proves
		// their request is long over; the base table, read consistently,
		// tells which.
		give, err := r.s.giveUp(ctx, r.creator, r.next, it.Seq-1, it.CreatedAt.UnixMilli())
		if err != nil || !give {
			return false, err
		}
		r.next = it.Seq
	}
	ok, err := r.s.replayItem(ctx, it, r.send, r.take, &r.res)
	if ok && err == nil {
		r.next++
	}
	return ok, err
}

// replayItem queues one item unless already replayed; false means the
// creator must stop here (budget spent, held by another replayer, or the
// send failed).
func (s *Store) replayItem(ctx context.Context, it Item, send Sender, take func() bool, res *ReplayResult) (bool, error) {
	if it.Status == StatusReplayed {
		return true, nil
	}
	if !take() {
		return false, nil
	}
	token, ok, err := s.Claim(ctx, it.MessageID)
	if err != nil {
		return false, err
	}
	if !ok {
		// Another replayer holds it, or it was replayed since the index
		// was read: the next run sees which.
		res.Skipped++
		return false, nil
	}
	sendErr := send(ctx, it)
	if err := s.Finish(ctx, it.MessageID, token, sendErr); err != nil {
		return false, err
	}
	if sendErr != nil {
		res.Failed++
		return false, nil
	}
	res.Replayed++
	return true, nil
}

// advance moves creator's done to at least done (never back); with
// ifReserved > 0 only while nothing was reserved since.
func (s *Store) advance(ctx context.Context, creator string, done, ifReserved int64) error {
	if done <= 0 {
		return nil
	}
	cond := "attribute_exists(backlogCreator) AND done < :d"
	vals := map[string]ddbtypes.AttributeValue{":d": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(done, 10)}}
	if ifReserved > 0 {
		cond += " AND reserved = :r"
		vals[":r"] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(ifReserved, 10)}
	}
	_, err := s.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key(backlogPrefix + creator),
		UpdateExpression: aws.String("SET done = :d"), ConditionExpression: aws.String(cond), ExpressionAttributeValues: vals,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("fallback: advance %s: %w", creator, err)
	}
	return nil
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

// CreateTableInput is the table's definition for an emulator (the stack
// defines the same key and index in infra/storage.go; TTL is the stack's).
func CreateTableInput(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String(KeyAttribute), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String(CreatorAttribute), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String(SeqAttribute), AttributeType: ddbtypes.ScalarAttributeTypeN},
		},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String(KeyAttribute), KeyType: ddbtypes.KeyTypeHash}},
		GlobalSecondaryIndexes: []ddbtypes.GlobalSecondaryIndex{{
			IndexName: aws.String(CreatorIndex),
			KeySchema: []ddbtypes.KeySchemaElement{
				{AttributeName: aws.String(CreatorAttribute), KeyType: ddbtypes.KeyTypeHash},
				{AttributeName: aws.String(SeqAttribute), KeyType: ddbtypes.KeyTypeRange},
			},
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll},
		}},
		BillingMode: ddbtypes.BillingModePayPerRequest,
	}
}
