package message

import (
	"strings"
	"testing"
	"time"
)

func TestReadersAcceptTheAttributeNamesWrittenBeforeSnakeCase(t *testing.T) {
	// GIVEN a message queued before the rename, with userId and messageType
	m := validMessage(t)
	old := m.Attributes().Strings()
	old["userId"], old["messageType"] = old[AttrUserID], old[AttrMessageType]
	delete(old, AttrUserID)
	delete(old, AttrMessageType)

	// WHEN its attributes are read
	got, err := AttributesFromStrings(old)

	// THEN they read as the new names would
	if err != nil || got != m.Attributes() {
		t.Fatalf("legacy attributes = %+v (%v), want %+v", got, err, m.Attributes())
	}
}

func TestEveryAttributeNameIsSnakeCase(t *testing.T) {
	for _, name := range []string{AttrUserID, AttrMessageType, AttrTimestamp, AttrPriority, AttrCorrelationID,
		AttrRateLimitTimestamp, AttrTokensRemaining, AttrRateLimiterVersion, AttrFailureReason} {
		if name != strings.ToLower(name) || strings.ContainsAny(name, "- ") {
			t.Errorf("attribute %q is not snake_case", name)
		}
	}
}

func TestCorrelationIDTravelsAsAnAttributeNotInTheBody(t *testing.T) {
	// GIVEN a message with a correlation id and the same message without
	m := validMessage(t)
	plain := m
	m.CorrelationID = "req-42.a_b"

	// WHEN it is encoded for the queue
	body, _ := m.Marshal()
	plainBody, _ := plain.Marshal()
	dedup, _ := m.WorkflowsDeduplicationID()
	plainDedup, _ := plain.WorkflowsDeduplicationID()
	back, err := AttributesFromSQS(m.Attributes().SQS())

	// THEN the body and its deduplication id are unchanged, and the
	// attributes carry the id
	if string(body) != string(plainBody) || strings.Contains(string(body), "req-42") || dedup != plainDedup {
		t.Fatalf("the correlation id changed the body: %s", body)
	}
	if err != nil || back.CorrelationID != "req-42.a_b" {
		t.Fatalf("attributes = %+v (%v)", back, err)
	}
	if _, ok := plain.Attributes().Strings()[AttrCorrelationID]; ok {
		t.Fatal("a message without a correlation id carries an empty correlation_id attribute")
	}
	// AND the size check counts it
	withSize, _ := m.SQSSize()
	plainSize, _ := plain.SQSSize()
	if withSize != plainSize+len(AttrCorrelationID)+len("String")+len("req-42.a_b") {
		t.Fatalf("SQSSize %d vs %d without the correlation id", withSize, plainSize)
	}
}

func TestValidCorrelationID(t *testing.T) {
	for s, want := range map[string]bool{
		NewCorrelationID(): true, "a": true, "req-1_x.y": true, strings.Repeat("a", MaxCorrelationIDLength): true,
		"": false, "-a": false, "a/b": false, "a b": false, "é": false, strings.Repeat("a", MaxCorrelationIDLength+1): false, "a\n": false,
	} {
		if got := ValidCorrelationID(s); got != want {
			t.Errorf("ValidCorrelationID(%q) = %v, want %v", s, got, want)
		}
	}
	m := validMessage(t)
	m.CorrelationID = "a/../b"
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "correlationId") {
		t.Fatalf("Validate with an invalid correlation id = %v", err)
	}
	if got := CorrelationIDOf(map[string]string{AttrCorrelationID: "a/../b"}); got != "" {
		t.Fatalf("CorrelationIDOf returned the invalid %q", got)
	}
}

func TestApprovalAttributesRoundTrip(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	values := StringValues(Approval{At: at, TokensRemaining: 7, Version: "v9"}.SQS())
	got, ok := ApprovedAt(values)
	if !ok || !got.Equal(at) || values[AttrTokensRemaining] != "7" || values[AttrRateLimiterVersion] != "v9" {
		t.Fatalf("approval attributes %v -> %v %v", values, got, ok)
	}
	if _, ok := ApprovedAt(map[string]string{}); ok {
		t.Fatal("a message without approval reads as approved")
	}
}

func TestGroupAndDeduplicationIDs(t *testing.T) {
	m := validMessage(t)
	m.CreatorID = "creator-9"
	if m.GroupID() != "creator-9" || m.IntakeDeduplicationID() != m.MessageID {
		t.Fatalf("group %q intake dedup %q", m.GroupID(), m.IntakeDeduplicationID())
	}
	d, _ := m.DeduplicationID()
	if w, _ := m.WorkflowsDeduplicationID(); w != d {
		t.Fatalf("workflows dedup %q, want the body hash %q", w, d)
	}
}
