package message

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"
)

// The queue contract: what a message is on both FIFO queues (the intake
// queue the API and the replay write, the workflows queue the limiter
// forwards to and the scraper reads), written once here and used by every
// producer and consumer (API, limiter, scraper, replay, redrive).
//
//   - body: Message as JSON (Marshal); the limiter forwards it byte for byte;
//   - group id: GroupID (the creator key) on both queues;
//   - deduplication id: IntakeDeduplicationID (the messageId) on the intake
//     queue, WorkflowsDeduplicationID (a hash of the body) on the workflows
//     queue;
//   - attributes: the names below, all snake_case. The API sets user_id,
//     message_type, timestamp, priority and correlation_id; the limiter
//     keeps them and adds rate_limit_timestamp, tokens_remaining and
//     rate_limiter_version; a move to a dead-letter queue adds
//     failure_reason.
const (
	AttrUserID        = "user_id"
	AttrMessageType   = "message_type"
	AttrTimestamp     = "timestamp"
	AttrPriority      = "priority"
	AttrCorrelationID = "correlation_id"

	// Set by the rate limiter on the workflows queue (seed 003 R2.4).
	AttrRateLimitTimestamp = "rate_limit_timestamp" // epoch ms of the approval (Number)
	AttrTokensRemaining    = "tokens_remaining"     // Number; -1 when the flag skipped the check
	AttrRateLimiterVersion = "rate_limiter_version"

	// AttrFailureReason is why a message is in a dead-letter queue.
	AttrFailureReason = "failure_reason"
)

// legacyAttrNames are the names the API wrote before the contract chose
// snake_case (seed 000 R2.3 spelled them camelCase). Readers accept them
// until no message written before the rename can still be in a queue or a
// DLQ (14 days of retention, docs/design.md "The queue contract").
var legacyAttrNames = map[string]string{AttrUserID: "userId", AttrMessageType: "messageType"}

// MessageTypeOnlyFansSend is the message_type of an OnlyFans message send;
// the attribute lets other producers share the queues later without
// guessing.
const MessageTypeOnlyFansSend = "onlyfans.message.send"

// GroupID is the MessageGroupId of m on both queues: its creator key, so a
// creator's messages are delivered one at a time, in order.
func (m Message) GroupID() string { return m.CreatorKey() }

// IntakeDeduplicationID is the MessageDeduplicationId of m on the intake
// queue: its messageId, unique forever, so two messages with the same text
// are two messages and a replayed copy of one is dropped.
func (m Message) IntakeDeduplicationID() string { return m.MessageID }

// WorkflowsDeduplicationID is the MessageDeduplicationId of m on the
// workflows queue: the hash of its body (DeduplicationID), so a forward
// repeated after a lost answer is dropped by SQS.
func (m Message) WorkflowsDeduplicationID() (string, error) { return m.DeduplicationID() }

// MaxCorrelationIDLength bounds a correlation id (it is part of S3 keys).
const MaxCorrelationIDLength = 128

// NewCorrelationID returns a fresh correlation id (a UUID v4).
func NewCorrelationID() string { return uuid.NewString() }

// ValidCorrelationID reports whether s may be a correlation id: 1 to 128
// ASCII letters, digits, '-', '_' or '.', starting with a letter or digit.
// It ends up in log lines, SQS attributes and S3 keys, so nothing else.
func ValidCorrelationID(s string) bool {
	if s == "" || len(s) > MaxCorrelationIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '-' && c != '_' && c != '.')) {
			return false
		}
	}
	return true
}

// Attributes are the SQS message attributes the API sets on a message: a
// copy of some body fields so consumers, filters and the console can see
// them without parsing, and the correlation id, which is not in the body.
type Attributes struct {
	UserID      string
	MessageType string
	Timestamp   time.Time
	Priority    Priority
	// CorrelationID is empty for a message queued before correlation ids
	// existed (readers then use the messageId).
	CorrelationID string
}

// Attributes returns the SQS attributes for m.
func (m Message) Attributes() Attributes {
	return Attributes{
		UserID:        m.UserID,
		MessageType:   MessageTypeOnlyFansSend,
		Timestamp:     m.Timestamp.UTC(),
		Priority:      m.Priority.Effective(),
		CorrelationID: m.CorrelationID,
	}
}

// Strings returns the attributes as name → string value (correlation_id
// only when set).
func (a Attributes) Strings() map[string]string {
	out := map[string]string{
		AttrUserID:      a.UserID,
		AttrMessageType: a.MessageType,
		AttrTimestamp:   a.Timestamp.UTC().Format(time.RFC3339Nano),
		AttrPriority:    string(a.Priority),
	}
	if a.CorrelationID != "" {
		out[AttrCorrelationID] = a.CorrelationID
	}
	return out
}

// SQS returns the attributes in the form SendMessage takes. All are of type
// String; the timestamp is RFC 3339 so it reads the same as in the body.
func (a Attributes) SQS() map[string]sqstypes.MessageAttributeValue {
	out := map[string]sqstypes.MessageAttributeValue{}
	for k, v := range a.Strings() {
		out[k] = stringAttr(v)
	}
	return out
}

// lookup returns the value of name in values, under its legacy name if a
// message written before the rename carries that one.
func lookup(values map[string]string, name string) (string, bool) {
	if v, ok := values[name]; ok {
		return v, true
	}
	if old, ok := legacyAttrNames[name]; ok {
		v, ok := values[old]
		return v, ok
	}
	return "", false
}

// AttributesFromStrings parses name → string value, as read from a received
// message or a fallback item. Attributes other than ours are ignored; the
// legacy camelCase names are accepted (legacyAttrNames).
func AttributesFromStrings(values map[string]string) (Attributes, error) {
	got := map[string]string{}
	var missing []string
	for _, name := range []string{AttrUserID, AttrMessageType, AttrTimestamp, AttrPriority} {
		v, ok := lookup(values, name)
		if !ok {
			missing = append(missing, name)
		}
		got[name] = v
	}
	if len(missing) > 0 {
		return Attributes{}, fmt.Errorf("message attributes missing: %v", missing)
	}
	ts, err := time.Parse(time.RFC3339Nano, got[AttrTimestamp])
	if err != nil {
		return Attributes{}, fmt.Errorf("message attribute %s: %w", AttrTimestamp, err)
	}
	p := Priority(got[AttrPriority])
	if !p.Valid() {
		return Attributes{}, fmt.Errorf("message attribute %s: unknown priority %q", AttrPriority, p)
	}
	return Attributes{
		UserID:        got[AttrUserID],
		MessageType:   got[AttrMessageType],
		Timestamp:     ts.UTC(),
		Priority:      p.Effective(),
		CorrelationID: CorrelationIDOf(values),
	}, nil
}

// StringValues returns the string values of attributes as ReceiveMessage
// returns them.
func StringValues(attrs map[string]sqstypes.MessageAttributeValue) map[string]string {
	values := make(map[string]string, len(attrs))
	for k, v := range attrs {
		if v.StringValue != nil {
			values[k] = *v.StringValue
		}
	}
	return values
}

// AttributesFromSQS parses attributes as ReceiveMessage returns them.
func AttributesFromSQS(attrs map[string]sqstypes.MessageAttributeValue) (Attributes, error) {
	return AttributesFromStrings(StringValues(attrs))
}

// CorrelationIDOf returns the correlation id among attribute values, ""
// when there is none or it is not a valid one.
func CorrelationIDOf(values map[string]string) string {
	if v := values[AttrCorrelationID]; ValidCorrelationID(v) {
		return v
	}
	return ""
}

// Approval is what the rate limiter adds to a message it forwards.
type Approval struct {
	// At is when the limiter approved the message (the Redis clock).
	At time.Time
	// TokensRemaining is what the creator's window had left; -1 when the
	// flag was off and nothing was checked.
	TokensRemaining int
	Version         string
}

// SQS returns the limiter's attributes in the form SendMessage takes.
func (a Approval) SQS() map[string]sqstypes.MessageAttributeValue {
	return map[string]sqstypes.MessageAttributeValue{
		AttrRateLimitTimestamp: numberAttr(a.At.UnixMilli()),
		AttrTokensRemaining:    numberAttr(int64(a.TokensRemaining)),
		AttrRateLimiterVersion: stringAttr(a.Version),
	}
}

// ApprovedAt reads when the limiter approved a message from its attribute
// values; false when it carries no (readable) approval.
func ApprovedAt(values map[string]string) (time.Time, bool) {
	ms, err := strconv.ParseInt(values[AttrRateLimitTimestamp], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

func stringAttr(s string) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

func numberAttr(n int64) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: aws.String("Number"), StringValue: aws.String(strconv.FormatInt(n, 10))}
}

// SQSSize is the size SQS counts for m sent with its attributes: the body plus,
// per attribute, its name, data type and value.
func (m Message) SQSSize() (int, error) {
	body, err := m.Marshal()
	if err != nil {
		return 0, err
	}
	size := len(body)
	for k, v := range m.Attributes().Strings() {
		size += len(k) + len("String") + len(v)
	}
	return size, nil
}
