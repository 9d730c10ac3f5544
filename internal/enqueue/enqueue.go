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

// Sender sends validated messages to the intake queue.
type Sender struct {
	sqs            SQSAPI
	intakeQueueURL string
	// entryBackoff spaces the retries of entries a batch call reported failed
	// (the SDK retries whole calls, not entries).
	entryBackoff time.Duration
}

// NewSender returns a sender to the intake queue at intakeQueueURL.
func NewSender(client SQSAPI, intakeQueueURL string, entryBackoff time.Duration) *Sender {
	return &Sender{sqs: client, intakeQueueURL: intakeQueueURL, entryBackoff: entryBackoff}
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
	if len(msgs) > 10 {
		for i := range errs {
			errs[i] = errors.New("enqueue: at most 10 messages per call")
		}
		return errs
	}
	r := newRounds(msgs, errs)
	for round := r.next(); len(round) > 0; round = r.next() {
		// SendMessageBatch carries at most 1 MiB: large messages take more calls.
		for _, chunk := range sqslimits.Split(round, sqslimits.SendEntrySize) {
			failed := s.sendChunk(ctx, chunk)
			for _, e := range chunk {
				i, _ := strconv.Atoi(aws.ToString(e.Id))
				if err, ok := failed[i]; ok {
					r.fail(i, err)
				} else {
					r.done(i)
				}
			}
		}
	}
	return errs
}

// rounds hands out each creator's messages in order, one per creator per
// round; a failed message ends its creator's queue.
type rounds struct {
	msgs     []message.Message
	errs     []error
	creators []string
	queue    map[string][]int // creator → indexes of its messages not yet sent
}

func newRounds(msgs []message.Message, errs []error) *rounds {
	r := &rounds{msgs: msgs, errs: errs, queue: map[string][]int{}}
	for i, m := range msgs {
		c := m.GroupID()
		if _, ok := r.queue[c]; !ok {
			r.creators = append(r.creators, c)
		}
		r.queue[c] = append(r.queue[c], i)
	}
	return r
}

// next returns the entries of the next round: the first unsent message of
// every creator (ids are message indexes).
func (r *rounds) next() []sqstypes.SendMessageBatchRequestEntry {
	var round []sqstypes.SendMessageBatchRequestEntry
	for _, c := range r.creators {
		if len(r.queue[c]) == 0 {
			continue
		}
		i := r.queue[c][0]
		e, err := entry(strconv.Itoa(i), r.msgs[i])
		if err != nil {
			r.fail(i, &Error{Attempts: 0, Err: err})
			continue
		}
		round = append(round, e)
	}
	return round
}

// done marks message i queued.
func (r *rounds) done(i int) {
	c := r.msgs[i].GroupID()
	r.queue[c] = r.queue[c][1:]
}

// fail records err for message i and ErrNotSent for every later message
// of its creator, which are never sent.
func (r *rounds) fail(i int, err error) {
	c := r.msgs[i].GroupID()
	r.errs[i] = err
	for _, j := range r.queue[c] {
		if j > i && r.errs[j] == nil {
			r.errs[j] = &Error{Attempts: 0, Err: ErrNotSent}
		}
	}
	r.queue[c] = nil
}

// sendChunk sends entries of distinct creators in one call and returns the
// ones that finally failed, by message index.
func (s *Sender) sendChunk(ctx context.Context, chunk []sqstypes.SendMessageBatchRequestEntry) map[int]error {
	if len(chunk) > 1 {
		return s.sendBatch(ctx, s.intakeQueueURL, chunk)
	}
	failed := map[int]error{}
	i, _ := strconv.Atoi(aws.ToString(chunk[0].Id))
	if err := s.sendOne(ctx, s.intakeQueueURL, chunk[0]); err != nil {
		failed[i] = err
	}
	return failed
}

// entry is the intake queue's entry of m (message contract): group = the
// creator key, deduplication id = the messageId (unique forever, so two
// messages with the same text are two messages), attributes with the
// correlation id.
func entry(id string, m message.Message) (sqstypes.SendMessageBatchRequestEntry, error) {
	body, attrs, err := Body(m)
	if err != nil {
		return sqstypes.SendMessageBatchRequestEntry{}, err
	}
	return sqstypes.SendMessageBatchRequestEntry{
		Id: aws.String(id), MessageBody: aws.String(body), MessageAttributes: attrs,
		MessageGroupId: aws.String(m.GroupID()), MessageDeduplicationId: aws.String(m.IntakeDeduplicationID()),
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
