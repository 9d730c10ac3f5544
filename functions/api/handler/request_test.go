package handler

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		n          int
		batch      bool
		field      string // "" = valid
		reason     string
	}{
		{"single", `{"recipientId":"f","content":"hi"}`, 1, false, "", ""},
		{"batch", `{"messages":[{"recipientId":"f","content":"a"},{"recipientId":"g","content":"b"}]}`, 2, true, "", ""},
		{"not json", `{"recipientId":`, 0, false, "body", "must be a JSON object"},
		{"array", `[1]`, 0, false, "body", "must be a JSON object"},
		{"unknown field", `{"recipientId":"f","content":"hi","colour":"red"}`, 0, false, "colour", "is not a known field"},
		{"server field", `{"messageId":"x","recipientId":"f","content":"hi"}`, 0, false, "messageId", "is set by the server"},
		{"wrong type", `{"recipientId":"f","content":7}`, 0, false, "content", "must be a string"},
		{"media not list", `{"recipientId":"f","content":"x","mediaUrls":"https://a"}`, 0, false, "mediaUrls", "must be a list"},
		{"empty batch", `{"messages":[]}`, 0, true, "messages", "must hold 1 to 10 messages, got 0"},
		{"batch of 11", `{"messages":[` + strings.Repeat(`{"recipientId":"f","content":"a"},`, 10) + `{"recipientId":"f","content":"a"}]}`, 0, true, "messages", "must hold 1 to 10 messages, got 11"},
		{"batch item error", `{"messages":[{"recipientId":"f","content":"a"},{"recipientId":"f","content":"a","x":1}]}`, 0, true, "messages[1].x", "is not a known field"},
		{"batch with extra", `{"messages":[{"recipientId":"f","content":"a"}],"x":1}`, 0, true, "body", `a batch must hold only "messages"`},
		{"invalid utf8", "{\"recipientId\":\"f\",\"content\":\"\xff\"}", 0, false, "body", "must be valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drafts, batch, err := DecodeRequest([]byte(tc.body))
			if tc.field == "" {
				if err != nil || len(drafts) != tc.n || batch != tc.batch {
					t.Fatalf("DecodeRequest = %d drafts, batch %t, %v", len(drafts), batch, err)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RequestError", err)
			}
			for _, f := range re.Fields {
				if f.Field == tc.field && strings.HasPrefix(f.Reason, tc.reason) {
					return
				}
			}
			t.Fatalf("fields %+v lack %s: %s", re.Fields, tc.field, tc.reason)
		})
	}
}

// FuzzDecodeRequest: no input panics, and every accepted input yields 1 to
// 10 drafts while every refused one names at least one field.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"recipientId":"f","content":"hi"}`,
		`{"messages":[{"recipientId":"f","content":"a","mediaUrls":["https://x"],"metadata":{"k":"v"},"priority":"high"}]}`,
		`{"messageId":"1"}`, `[]`, `null`, `{"messages":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		drafts, _, err := DecodeRequest(body)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || len(re.Fields) == 0 {
				t.Fatalf("error without fields: %v", err)
			}
			return
		}
		if len(drafts) < 1 || len(drafts) > MaxBatch {
			t.Fatalf("%d drafts accepted", len(drafts))
		}
	})
}
