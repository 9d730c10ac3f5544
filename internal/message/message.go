// Package message is the payload every part of the pipeline agrees on and
// its queue contract: the API builds it, the rate limiter keys on it, the
// scraper sends it. It owns the JSON form, the validation rules and, for
// both queues, the group and deduplication ids and every SQS message
// attribute name (contract.go).
package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Priority is how urgent a message is. The pipeline keeps per-creator order
// regardless of priority; it is carried for observability and future routing.
type Priority string

const (
	PriorityLow    Priority = "low"
	PriorityNormal Priority = "normal"
	PriorityHigh   Priority = "high"
)

// Valid reports whether p is one of the known priorities. The empty priority
// is valid and means PriorityNormal.
func (p Priority) Valid() bool {
	switch p {
	case "", PriorityLow, PriorityNormal, PriorityHigh:
		return true
	}
	return false
}

// Effective returns p, or PriorityNormal when p is empty.
func (p Priority) Effective() Priority {
	if p == "" {
		return PriorityNormal
	}
	return p
}

// Message is one OnlyFans message from a creator to a fan (seed 000, R3).
type Message struct {
	// MessageID is a UUID v4 that identifies the message end to end.
	MessageID string `json:"messageId"`
	// UserID is the Huntaze user who asked for the send (the JWT subject).
	UserID string `json:"userId"`
	// CreatorID is the OnlyFans creator account the message goes out from.
	// Optional: it defaults to UserID. It is the rate-limit and ordering key.
	CreatorID   string    `json:"creatorId,omitempty"`
	RecipientID string    `json:"recipientId"`
	Content     string    `json:"content"`
	Timestamp   time.Time `json:"timestamp"`
	MediaURLs   []string  `json:"mediaUrls,omitempty"`
	// Metadata is a flat string map: SQS attributes and logs carry it as is.
	Metadata map[string]string `json:"metadata,omitempty"`
	Priority Priority          `json:"priority,omitempty"`
	// CorrelationID ties together the logs, results and captures of the
	// request that sent the message (the API's X-Correlation-Id). It
	// travels as the correlation_id attribute, not in the body: the body,
	// and so its deduplication id, is what it was, and consumers that
	// refuse unknown fields keep reading it. Parse leaves it empty; readers
	// take it from the attributes (CorrelationIDOf).
	CorrelationID string `json:"-"`
}

// New returns a message with a fresh UUID v4 id and the timestamp now (UTC).
func New(userID, recipientID, content string, now time.Time) (Message, error) {
	id, err := NewID()
	if err != nil {
		return Message{}, err
	}
	return Message{
		MessageID:   id,
		UserID:      userID,
		RecipientID: recipientID,
		Content:     content,
		Timestamp:   now.UTC(),
	}, nil
}

// NewID returns a random UUID v4 string.
func NewID() (string, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("generate message id: %w", err)
	}
	return id.String(), nil
}

// CreatorKey is the key the rate limiter counts against and the FIFO
// MessageGroupId: the creator when given, else the user.
func (m Message) CreatorKey() string {
	if m.CreatorID != "" {
		return m.CreatorID
	}
	return m.UserID
}

// Marshal returns the JSON body sent to SQS. The timestamp is written in UTC so
// that the same message always has the same bytes.
func (m Message) Marshal() ([]byte, error) {
	m.Timestamp = m.Timestamp.UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Content is user text: keep <, > and & as they are instead of \u003c.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode message %s: %w", m.MessageID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ErrInvalidUTF8 is returned by Parse for a body that is not UTF-8. It is
// checked before decoding because encoding/json silently replaces bad bytes.
var ErrInvalidUTF8 = errors.New("body is not valid UTF-8")

// Parse decodes a JSON body. It rejects invalid UTF-8, unknown fields and
// trailing data; it does not validate the fields (call Validate).
func Parse(data []byte) (Message, error) {
	if !utf8.Valid(data) {
		return Message{}, ErrInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Message
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("decode message: %w", err)
	}
	if dec.More() {
		return Message{}, errors.New("decode message: trailing data after the JSON object")
	}
	// One form per value: an empty list or map is the same as none.
	m.Timestamp = m.Timestamp.UTC()
	if len(m.MediaURLs) == 0 {
		m.MediaURLs = nil
	}
	if len(m.Metadata) == 0 {
		m.Metadata = nil
	}
	return m, nil
}

// DeduplicationID is the FIFO MessageDeduplicationId of m: the hex SHA-256 of
// its canonical JSON (Marshal). It covers messageId, so a re-forwarded copy
// of one message is dropped by SQS while two messages with the same text are
// not.
func (m Message) DeduplicationID() (string, error) {
	b, err := m.Marshal()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
