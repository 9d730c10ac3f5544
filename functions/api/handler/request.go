package handler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/huntaze/message-pipeline/internal/message"
)

// MaxBatch is the most messages one request may carry (one SendMessageBatch).
const MaxBatch = 10

// Draft is one message as a client sends it: the server sets messageId,
// userId (from the token) and timestamp.
type Draft struct {
	UserID      string            `json:"userId,omitempty"`
	CreatorID   string            `json:"creatorId,omitempty"`
	RecipientID string            `json:"recipientId"`
	Content     string            `json:"content"`
	MediaURLs   []string          `json:"mediaUrls,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Priority    message.Priority  `json:"priority,omitempty"`
}

// RequestError is a body that cannot be decoded, with the fields at fault.
type RequestError struct {
	Fields []message.FieldError
}

func (e *RequestError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Reason
	}
	return "invalid request: " + strings.Join(parts, "; ")
}

func requestError(field, reason string) *RequestError {
	return &RequestError{Fields: []message.FieldError{{Field: field, Reason: reason}}}
}

// serverFields may not come from the client.
var serverFields = []string{"messageId", "timestamp"}

// DecodeRequest reads either one message object or {"messages":[...]} with
// 1 to 10 of them. batch reports which form was used, so the answer has the
// same form. Unknown fields and server-set fields are refused by name.
func DecodeRequest(body []byte) (drafts []Draft, batch bool, err error) {
	if !utf8.Valid(body) {
		return nil, false, requestError("body", "must be valid UTF-8")
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, false, requestError("body", "must be a JSON object: "+jsonReason(err))
	}
	if raw, ok := probe["messages"]; ok {
		if len(probe) != 1 {
			return nil, true, requestError("body", `a batch must hold only "messages"`)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, true, requestError("messages", "must be an array of message objects")
		}
		if len(items) == 0 || len(items) > MaxBatch {
			return nil, true, requestError("messages", fmt.Sprintf("must hold 1 to %d messages, got %d", MaxBatch, len(items)))
		}
		var fields []message.FieldError
		for i, item := range items {
			d, err := decodeDraft(item)
			if err != nil {
				for _, f := range err.Fields {
					fields = append(fields, message.FieldError{Field: fmt.Sprintf("messages[%d].%s", i, f.Field), Reason: f.Reason})
				}
				continue
			}
			drafts = append(drafts, d)
		}
		if len(fields) > 0 {
			return nil, true, &RequestError{Fields: fields}
		}
		return drafts, true, nil
	}
	d, rerr := decodeDraft(body)
	if rerr != nil {
		return nil, false, rerr
	}
	return []Draft{d}, false, nil
}

func decodeDraft(raw []byte) (Draft, *RequestError) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return Draft{}, requestError("body", "must be a JSON object")
	}
	var errs []message.FieldError
	for _, f := range serverFields {
		if _, ok := fields[f]; ok {
			errs = append(errs, message.FieldError{Field: f, Reason: "is set by the server"})
			delete(fields, f)
		}
	}
	clean, _ := json.Marshal(fields) // re-encoding decoded raw messages cannot fail
	dec := json.NewDecoder(bytes.NewReader(clean))
	dec.DisallowUnknownFields()
	var d Draft
	if err := dec.Decode(&d); err != nil {
		errs = append(errs, fieldOf(err))
	}
	if len(errs) > 0 {
		return Draft{}, &RequestError{Fields: errs}
	}
	if len(d.MediaURLs) == 0 {
		d.MediaURLs = nil
	}
	if len(d.Metadata) == 0 {
		d.Metadata = nil
	}
	return d, nil
}

// fieldOf names the field a decoding error is about.
func fieldOf(err error) message.FieldError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return message.FieldError{Field: te.Field, Reason: "must be a " + jsonType(te.Type.Kind().String())}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return message.FieldError{Field: message.Clip(strings.Trim(name, `"`), 64), Reason: "is not a known field"}
	}
	return message.FieldError{Field: "body", Reason: jsonReason(err)}
}

func jsonType(kind string) string {
	switch kind {
	case "slice":
		return "list"
	case "map", "struct":
		return "object"
	}
	return kind
}

func jsonReason(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}
