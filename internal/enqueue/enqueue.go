// Package enqueue puts messages on the pipeline's first queue, the FIFO
// intake queue (group = creator key, deduplication id = messageId), keeping
// each creator's order. Every message takes this path, whatever the rate
// limiter flag says: with the flag off the limiter forwards without the
// rate check (functions/ratelimiter), so a flip never lets a creator's new
// messages overtake the ones still in the intake queue. Used by the API and
// by the fallback replay.
package enqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/sqslimits"
)

// MaxAttempts is one send plus 3 retries (seed 000 R6.1).
const MaxAttempts = 4

// Retryer is the SQS client retryer: exponential backoff with jitter on
// throttling, 5xx and network errors only (the SDK's standard retryer; a
// permission or validation error is not retried). The client-side retry
// quota is off so that every message gets its retries during an outage.
func Retryer(maxBackoff time.Duration) func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = MaxAttempts
			o.MaxBackoff = maxBackoff
			o.RateLimiter = ratelimit.None
		})
	}
}

// SQSAPI is the part of the SQS client the sender uses.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Queues are the pipeline's queues; messages go to RateLimiterURL.
// WorkflowsURL is kept for callers that still name it: nothing is sent
// there from the API since the flag is applied by the limiter.
type Queues struct {
	RateLimiterURL string
	WorkflowsURL   string
}

// Sender sends validated messages.
type Sender struct {
	sqs    SQSAPI
	queues Queues
	// entryBackoff spaces the retries of entries a batch call reported failed
	// (the SDK retries whole calls, not entries).
	entryBackoff time.Duration
}

// NewSender returns a sender.
func NewSender(client SQSAPI, q Queues, entryBackoff time.Duration) *Sender {
	return &Sender{sqs: client, queues: q, entryBackoff: entryBackoff}
}

// Error is a failed send with the number of attempts made.
type Error struct {
	Attempts int
	Err      error
}

func (e *Error) Error() string { return fmt.Sprintf("after %d attempts: %v", e.Attempts, e.Err) }
func (e *Error) Unwrap() error { return e.Err }

// Body returns the message body and its SQS attributes.
func Body(m message.Message) (string, map[string]sqstypes.MessageAttributeValue, error) {
	b, err := m.Marshal()
	if err != nil {
		return "", nil, err
	}
	return string(b), m.Attributes().SQS(), nil
}

// ErrNotSent is the error of a message left unsent because an earlier
// message of its creator in the same call failed: sending it would let it
// overtake that one.
var ErrNotSent = errors.New("enqueue: not sent: an earlier message of this creator in the request failed")

// Send sends up to 10 messages to the intake queue and returns one error
// per message, nil when queued. A creator's messages are queued in the
// order given: each call to SQS carries at most one message per creator
// (round k holds the k-th message of every creator), so an entry SQS
// reports failed has no later entry of its creator already queued. A
// failed entry is retried (up to MaxAttempts) before its creator's next
// message is sent; if it still fails, it and every later message of its
// creator fail (ErrNotSent), and other creators are unaffected. A batch of
// n creators costs one call per round; one creator's 10 messages, 10 calls.
func (s *Sender) Send(ctx context.Context, msgs []message.Message) []error {
	errs := make([]error, len(msgs))
	if len(msgs) == 0 {
		return errs
	}
	if len(msgs) > 10 {
		for i := range errs {
			errs[i] = errors.New("enqueue: at most 10 messages per call")
		}
		return errs
	}
	// Each creator's messages, in order.
	var creators []string
	queue := map[string][]int{}
	for i, m := range msgs {
		c := m.CreatorKey()
		if _, ok := queue[c]; !ok {
			creators = append(creators, c)
		}
		queue[c] = append(queue[c], i)
	}
	fail := func(c string, i int, err error) {
		errs[i] = err
		for _, j := range queue[c] {
			if j > i && errs[j] == nil {
				errs[j] = &Error{Attempts: 0, Err: ErrNotSent}
			}
		}
		queue[c] = nil
	}
	for {
		var round []sqstypes.SendMessageBatchRequestEntry
		for _, c := range creators {
			if len(queue[c]) == 0 {
				continue
			}
			i := queue[c][0]
			e, err := Entry(strconv.Itoa(i), msgs[i], false)
			if err != nil {
				fail(c, i, &Error{Attempts: 0, Err: err})
				continue
			}
			round = append(round, e)
		}
		if len(round) == 0 {
			return errs
		}
		// SendMessageBatch carries at most 1 MiB: large messages take more calls.
		for _, chunk := range sqslimits.Split(round, sqslimits.SendEntrySize) {
			var failed map[int]error
			if len(chunk) == 1 {
				failed = map[int]error{}
				i, _ := strconv.Atoi(aws.ToString(chunk[0].Id))
				if err := s.sendOne(ctx, s.queues.RateLimiterURL, chunk[0]); err != nil {
					failed[i] = err
				}
			} else {
				failed = s.sendBatch(ctx, s.queues.RateLimiterURL, chunk)
			}
			for _, e := range chunk {
				i, _ := strconv.Atoi(aws.ToString(e.Id))
				c := msgs[i].CreatorKey()
				if err, ok := failed[i]; ok {
					fail(c, i, err)
				} else {
					queue[c] = queue[c][1:]
				}
			}
		}
	}
}

// Entry is the SQS entry of m: for the intake queue, group = creator key and
// deduplication id = messageId (unique forever, so two messages with the same
// text are two messages); for the workflows queue (direct), the ids the rate
// limiter would set.
func Entry(id string, m message.Message, direct bool) (sqstypes.SendMessageBatchRequestEntry, error) {
	body, attrs, err := Body(m)
	if err != nil {
		return sqstypes.SendMessageBatchRequestEntry{}, err
	}
	dedup := m.MessageID
	if direct {
		if dedup, err = m.DeduplicationID(); err != nil {
			return sqstypes.SendMessageBatchRequestEntry{}, err
		}
	}
	return sqstypes.SendMessageBatchRequestEntry{
		Id: aws.String(id), MessageBody: aws.String(body), MessageAttributes: attrs,
		MessageGroupId: aws.String(m.CreatorKey()), MessageDeduplicationId: aws.String(dedup),
	}, nil
}

func (s *Sender) sendOne(ctx context.Context, url string, e sqstypes.SendMessageBatchRequestEntry) error {
	_, err := s.sqs.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(url), MessageBody: e.MessageBody, MessageAttributes: e.MessageAttributes,
		MessageGroupId: e.MessageGroupId, MessageDeduplicationId: e.MessageDeduplicationId,
	})
	if err != nil {
		return &Error{Attempts: attempts(err), Err: err}
	}
	return nil
}

// sendBatch sends entries of distinct creators (ids are message indexes)
// and returns the ones that finally failed; entries the batch call reports
// failed without sender fault are sent again, up to MaxAttempts.
func (s *Sender) sendBatch(ctx context.Context, url string, entries []sqstypes.SendMessageBatchRequestEntry) map[int]error {
	failed := map[int]error{}
	pending := map[string]int{}
	for _, e := range entries {
		i, _ := strconv.Atoi(aws.ToString(e.Id))
		pending[aws.ToString(e.Id)] = i
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(url)}
		for _, e := range entries {
			if _, ok := pending[aws.ToString(e.Id)]; ok {
				in.Entries = append(in.Entries, e)
			}
		}
		out, err := s.sqs.SendMessageBatch(ctx, in)
		if err != nil {
			for _, i := range pending {
				failed[i] = &Error{Attempts: attempts(err), Err: err}
			}
			return failed
		}
		next := map[string]int{}
		for _, f := range out.Failed {
			i, ok := pending[aws.ToString(f.Id)]
			if !ok {
				continue
			}
			ferr := fmt.Errorf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			if f.SenderFault || attempt >= MaxAttempts {
				failed[i] = &Error{Attempts: attempt, Err: ferr}
				continue
			}
			next[aws.ToString(f.Id)] = i
		}
		pending = next
		if len(pending) > 0 {
			select {
			case <-ctx.Done():
				for _, i := range pending {
					failed[i] = &Error{Attempts: attempt, Err: ctx.Err()}
				}
				return failed
			case <-time.After(s.entryBackoff << (attempt - 1)):
			}
		}
	}
	return failed
}

// attempts reads how many attempts the SDK made from its error.
func attempts(err error) int {
	var max *retry.MaxAttemptsError
	if errors.As(err, &max) {
		return max.Attempt
	}
	return 1
}
