package message

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Names of the SQS message attributes the API sets on every message (seed 000, R2.3).
const (
	AttrUserID      = "userId"
	AttrMessageType = "messageType"
	AttrTimestamp   = "timestamp"
	AttrPriority    = "priority"
)

// MessageTypeOnlyFansSend is the messageType of an OnlyFans message send; the
// attribute lets other producers share the queues later without guessing.
const MessageTypeOnlyFansSend = "onlyfans.message.send"

// Attributes are the SQS message attributes of a message: a copy of some body
// fields so consumers, filters and the console can see them without parsing.
type Attributes struct {
	UserID      string
	MessageType string
	Timestamp   time.Time
	Priority    Priority
}

// Attributes returns the SQS attributes for m.
func (m Message) Attributes() Attributes {
	return Attributes{
		UserID:      m.UserID,
		MessageType: MessageTypeOnlyFansSend,
		Timestamp:   m.Timestamp.UTC(),
		Priority:    m.Priority.Effective(),
	}
}

// Strings returns the attributes as name → string value.
func (a Attributes) Strings() map[string]string {
	return map[string]string{
		AttrUserID:      a.UserID,
		AttrMessageType: a.MessageType,
		AttrTimestamp:   a.Timestamp.UTC().Format(time.RFC3339Nano),
		AttrPriority:    string(a.Priority),
	}
}

// SQS returns the attributes in the form SendMessage takes. All are of type
// String; the timestamp is RFC 3339 so it reads the same as in the body.
func (a Attributes) SQS() map[string]sqstypes.MessageAttributeValue {
	out := make(map[string]sqstypes.MessageAttributeValue, 4)
	for k, v := range a.Strings() {
		out[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return out
}

// AttributesFromStrings parses name → string value, as read from a received
// message. Attributes other than ours are ignored.
func AttributesFromStrings(values map[string]string) (Attributes, error) {
	var missing []string
	for _, name := range []string{AttrUserID, AttrMessageType, AttrTimestamp, AttrPriority} {
		if _, ok := values[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return Attributes{}, fmt.Errorf("message attributes missing: %v", missing)
	}
	ts, err := time.Parse(time.RFC3339Nano, values[AttrTimestamp])
	if err != nil {
		return Attributes{}, fmt.Errorf("message attribute %s: %w", AttrTimestamp, err)
	}
	p := Priority(values[AttrPriority])
	if !p.Valid() {
		return Attributes{}, fmt.Errorf("message attribute %s: unknown priority %q", AttrPriority, p)
	}
	return Attributes{
		UserID:      values[AttrUserID],
		MessageType: values[AttrMessageType],
		Timestamp:   ts.UTC(),
		Priority:    p.Effective(),
	}, nil
}

// AttributesFromSQS parses attributes as ReceiveMessage returns them.
func AttributesFromSQS(attrs map[string]sqstypes.MessageAttributeValue) (Attributes, error) {
	values := make(map[string]string, len(attrs))
	for k, v := range attrs {
		if v.StringValue != nil {
			values[k] = *v.StringValue
		}
	}
	return AttributesFromStrings(values)
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
