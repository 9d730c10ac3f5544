package message

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

var fixedTime = time.Date(2026, 11, 22, 17, 0, 0, 123456789, time.UTC)

func validMessage(t testing.TB) Message {
	t.Helper()
	m, err := New("user-1", "fan-42", "Hello <3 & welcome", fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewGeneratesUUIDv4(t *testing.T) {
	a, b := validMessage(t), validMessage(t)
	for _, m := range []Message{a, b} {
		id, err := uuid.Parse(m.MessageID)
		if err != nil || id.Version() != 4 {
			t.Fatalf("messageId %q is not a UUID v4 (err %v)", m.MessageID, err)
		}
	}
	if a.MessageID == b.MessageID {
		t.Fatalf("two messages got the same id %s", a.MessageID)
	}
}

func TestCreatorKeyDefaultsToUser(t *testing.T) {
	m := validMessage(t)
	if got := m.CreatorKey(); got != "user-1" {
		t.Fatalf("CreatorKey without creatorId = %q, want the userId", got)
	}
	m.CreatorID = "creator-9"
	if got := m.CreatorKey(); got != "creator-9" {
		t.Fatalf("CreatorKey = %q, want creator-9", got)
	}
}

func TestValidateAcceptsFullMessage(t *testing.T) {
	m := validMessage(t)
	m.CreatorID = "creator-9"
	m.MediaURLs = []string{"https://cdn.example.com/a.jpg"}
	m.Metadata = map[string]string{"campaign": "spring"}
	m.Priority = PriorityHigh
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate() = %v, want nil", err)
	}
}

func TestValidateReportsEachFieldError(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Message)
		field  string
		reason string
	}{
		{"missing id", func(m *Message) { m.MessageID = "" }, "messageId", "is required"},
		{"id not v4", func(m *Message) { m.MessageID = "6ba7b810-9dad-11d1-80b4-00c04fd430c8" }, "messageId", "must be a UUID v4"},
		{"missing user", func(m *Message) { m.UserID = "" }, "userId", "is required"},
		{"blank user", func(m *Message) { m.UserID = "  \t" }, "userId", "must not be blank"},
		{"user too long", func(m *Message) { m.UserID = strings.Repeat("u", MaxIDLength+1) }, "userId", "must be at most 128 characters"},
		{"blank creator", func(m *Message) { m.CreatorID = " " }, "creatorId", "must not be blank"},
		{"creator not a safe id", func(m *Message) { m.CreatorID = "créa tor" }, "creatorId", `must contain only letters, digits and _ - . @, start with a letter or digit, and not contain ".."`},
		{"recipient dot-dot", func(m *Message) { m.RecipientID = "a..b" }, "recipientId", `must contain only letters, digits and _ - . @, start with a letter or digit, and not contain ".."`},
		{"content with U+FFFE", func(m *Message) { m.Content = "x\ufffe" }, "content", "contains U+FFFE, a character SQS does not accept"},
		{"metadata with NUL", func(m *Message) { m.Metadata = map[string]string{"k": "\x00"} }, "metadata[k]", "contains U+0000, a character SQS does not accept"},
		{"user not a group id", func(m *Message) { m.UserID = "user 1" }, "userId", "must contain only ASCII letters, digits and punctuation (it is the SQS message group id)"},
		{"missing recipient", func(m *Message) { m.RecipientID = "" }, "recipientId", "is required"},
		{"missing content", func(m *Message) { m.Content = "" }, "content", "is required"},
		{"blank content", func(m *Message) { m.Content = "\n \n" }, "content", "must not be blank"},
		{"content too long", func(m *Message) { m.Content = strings.Repeat("é", MaxContentLength+1) }, "content", "must be at most 5000 characters"},
		{"missing timestamp", func(m *Message) { m.Timestamp = time.Time{} }, "timestamp", "is required"},
		{"http media", func(m *Message) { m.MediaURLs = []string{"https://ok.example/a", "http://cdn.example.com/a.jpg"} }, "mediaUrls[1]", "must be an https URL with a host"},
		{"media without host", func(m *Message) { m.MediaURLs = []string{"https:///a.jpg"} }, "mediaUrls[0]", "must be an https URL with a host"},
		{"empty media", func(m *Message) { m.MediaURLs = []string{""} }, "mediaUrls[0]", "is required"},
		{"too many media", func(m *Message) { m.MediaURLs = make([]string, MaxMediaURLs+1) }, "mediaUrls", "must have at most 10 items"},
		{"unknown priority", func(m *Message) { m.Priority = "urgent" }, "priority", "must be one of: low normal high"},
		{"metadata value too long", func(m *Message) { m.Metadata = map[string]string{"k": strings.Repeat("v", MaxMetadataValLen+1)} }, "metadata[k]", "must be at most 4096 characters"},
		{"invalid utf8", func(m *Message) { m.Content = "ok \xff" }, "content", "must be valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := validMessage(t)
			tc.mutate(&m)
			var verr *ValidationError
			if err := m.Validate(); !errors.As(err, &verr) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			for _, f := range verr.Fields {
				if f.Field == tc.field && f.Reason == tc.reason {
					return
				}
			}
			t.Fatalf("errors %+v lack {%s: %s}", verr.Fields, tc.field, tc.reason)
		})
	}
}

func TestValidateListsAllErrorsAtOnce(t *testing.T) {
	var m Message
	m.Priority = "bogus"
	var verr *ValidationError
	if !errors.As(m.Validate(), &verr) {
		t.Fatal("empty message validated")
	}
	got := map[string]bool{}
	for _, f := range verr.Fields {
		got[f.Field] = true
	}
	for _, want := range []string{"messageId", "userId", "recipientId", "content", "timestamp", "priority"} {
		if !got[want] {
			t.Errorf("no error for %s in %+v", want, verr.Fields)
		}
	}
	if errors.Is(verr, ErrTooLarge) {
		t.Error("field errors reported as ErrTooLarge")
	}
}

func TestValidateRejectsMessageOverSQSLimit(t *testing.T) {
	m := validMessage(t)
	// Each value is within its own limit; together they pass the SQS size.
	m.Content = strings.Repeat("😀", MaxContentLength) // 4 bytes each: 20 KB
	m.Metadata = map[string]string{}
	for i := range MaxMetadataKeys {
		m.Metadata[strings.Repeat(string(rune('a'+i)), MaxMetadataKeyLen)] = strings.Repeat("𝄞", MaxMetadataValLen)
	}
	size, err := m.SQSSize()
	if err != nil {
		t.Fatal(err)
	}
	if size <= MaxSQSMessageBytes-DownstreamAttributeReserve {
		t.Fatalf("fixture too small: %d bytes", size)
	}
	err = m.Validate()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Validate() = %v, want ErrTooLarge", err)
	}
}

func TestMarshalParseRoundTrip(t *testing.T) {
	m := validMessage(t)
	m.CreatorID = "creator-9"
	m.MediaURLs = []string{"https://cdn.example.com/a.jpg"}
	m.Metadata = map[string]string{"campaign": "spring"}
	m.Priority = PriorityLow
	body, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"content":"Hello <3 & welcome"`) {
		t.Errorf("content was escaped: %s", body)
	}
	got, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, m)
	}
}

func TestParseRejects(t *testing.T) {
	for name, body := range map[string]string{
		"invalid utf8":  "{\"content\":\"\xff\"}",
		"unknown field": `{"messageId":"x","bogus":1}`,
		"trailing data": `{"content":"a"} {"content":"b"}`,
		"not json":      `hello`,
		"wrong type":    `{"content":42}`,
		"bad timestamp": `{"timestamp":"yesterday"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(body)); err == nil {
				t.Fatalf("Parse(%q) = nil error", body)
			}
		})
	}
	if _, err := Parse([]byte("{\"content\":\"\xff\"}")); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatalf("invalid UTF-8 error = %v, want ErrInvalidUTF8", err)
	}
}

func TestAttributesRoundTrip(t *testing.T) {
	m := validMessage(t)
	attrs := m.Attributes()
	if attrs.Priority != PriorityNormal {
		t.Fatalf("default priority attribute = %q, want normal", attrs.Priority)
	}
	sqsAttrs := attrs.SQS()
	for _, name := range []string{AttrUserID, AttrMessageType, AttrTimestamp, AttrPriority} {
		v, ok := sqsAttrs[name]
		if !ok || v.DataType == nil || *v.DataType != "String" || v.StringValue == nil {
			t.Fatalf("attribute %s = %+v", name, v)
		}
	}
	back, err := AttributesFromSQS(sqsAttrs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, attrs) {
		t.Fatalf("attributes round trip: got %+v want %+v", back, attrs)
	}
	if back.UserID != m.UserID || !back.Timestamp.Equal(m.Timestamp) || back.MessageType != MessageTypeOnlyFansSend {
		t.Fatalf("attributes do not mirror the body: %+v", back)
	}
}

func TestAttributesFromStringsRejects(t *testing.T) {
	good := validMessage(t).Attributes().Strings()
	for name, mutate := range map[string]func(map[string]string){
		"missing userId": func(v map[string]string) { delete(v, AttrUserID) },
		"bad timestamp":  func(v map[string]string) { v[AttrTimestamp] = "noon" },
		"bad priority":   func(v map[string]string) { v[AttrPriority] = "urgent" },
	} {
		t.Run(name, func(t *testing.T) {
			v := map[string]string{}
			for k, s := range good {
				v[k] = s
			}
			mutate(v)
			if _, err := AttributesFromStrings(v); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// FuzzParse: no input panics, and every input that parses and validates
// survives serialize → parse unchanged.
func FuzzParse(f *testing.F) {
	seed := validMessage(f)
	seed.MediaURLs = []string{"https://cdn.example.com/a.jpg"}
	seed.Metadata = map[string]string{"k": "v"}
	body, err := seed.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte(`{"messageId":"","content":"\u0000"}`))
	f.Add([]byte("{\"content\":\"\xed\xa0\x80\"}"))
	f.Add([]byte(`{"timestamp":"2026-01-02T03:04:05.999999999+14:00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		if m.Validate() != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("valid message does not marshal: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("own output does not parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the message:\n got %#v\nwant %#v", again, m)
		}
	})
}

func TestDeduplicationIDCoversTheMessageID(t *testing.T) {
	// GIVEN a message, the same message parsed back, and a twin with another id
	m := validMessage(t)
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	twin := m
	twin.MessageID = "0b8e8b8c-5d2c-4c3e-9a57-7d5b1d1e2f30"

	// WHEN their deduplication ids are computed
	a, _ := m.DeduplicationID()
	again, _ := parsed.DeduplicationID()
	other, err := twin.DeduplicationID()

	// THEN a copy has the same id, the twin another, and both fit SQS (≤128)
	if err != nil || a != again || a == other || len(a) != 64 {
		t.Fatalf("ids %q %q %q (%v)", a, again, other, err)
	}
}
