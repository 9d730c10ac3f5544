package message

import (
	"crypto/sha256"
	"encoding/hex"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The group and deduplication ids of a message moved between a queue and
// its dead-letter queue (a move to the DLQ by the limiter or the scraper,
// a redrive back): part of the queue contract, so they are written here
// only.
const (
	// UnknownGroupID is the DLQ group of a record that arrived without one
	// (not from a FIFO queue, or no creator key to fall back to).
	UnknownGroupID = "unknown"
	// RedrivenGroupID is the group of a DLQ message sent back without one.
	RedrivenGroupID = "redriven"
)

// SystemGroupID is the MessageGroupId among a received message's system
// attributes ("" when it has none).
func SystemGroupID(system map[string]string) string {
	return system[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]
}

// SystemDeduplicationID is the MessageDeduplicationId among a received
// message's system attributes ("" when it has none).
func SystemDeduplicationID(system map[string]string) string {
	return system[string(sqstypes.MessageSystemAttributeNameMessageDeduplicationId)]
}

// DeadLetterIDs are the group and deduplication ids of a move to a FIFO
// DLQ: the message's own, so it stays in its creator's group and a
// repeated move is dropped; the sqsMessageID when it has no deduplication
// id, UnknownGroupID when no group.
func DeadLetterIDs(group, dedup, sqsMessageID string) (string, string) {
	if group == "" {
		group = UnknownGroupID
	}
	if dedup == "" {
		dedup = sqsMessageID
	}
	return group, dedup
}

// RedriveIDs are the group and deduplication ids of a DLQ message sent
// back to its FIFO source queue: its own group (RedrivenGroupID when none)
// and a hash of its DLQ message id, so a second redrive of the same DLQ
// copy within SQS's 5-minute window is dropped while a message that was
// dead-lettered twice is redriven twice.
func RedriveIDs(system map[string]string, sqsMessageID string) (string, string) {
	group := SystemGroupID(system)
	if group == "" {
		group = RedrivenGroupID
	}
	sum := sha256.Sum256([]byte("redrive:" + sqsMessageID))
	return group, hex.EncodeToString(sum[:])
}
