package message

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"
)

// Limits of one message. Lengths are in characters (runes), sizes in bytes.
const (
	MaxIDLength       = 128
	MaxContentLength  = 5000
	MaxMediaURLs      = 10
	MaxMediaURLLength = 2048
	MaxMetadataKeys   = 50
	MaxMetadataKeyLen = 64
	MaxMetadataValLen = 4096

	// MaxSQSMessageBytes is the size SQS allows for body plus attributes. AWS has
	// raised the quota to 1 MiB, but 256 KiB is what every consumer of ours
	// (Lambda event source, FIFO forward, older SDKs) is known to accept.
	MaxSQSMessageBytes = 256 * 1024
	// DownstreamAttributeReserve is kept free for the attributes the rate
	// limiter adds when it forwards the message to the FIFO queue, so a message
	// accepted by the API can always be forwarded.
	DownstreamAttributeReserve = 1024
)

// FieldError is one reason one field is invalid. Field is the JSON path
// (e.g. "mediaUrls[1]").
type FieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// ValidationError lists every field error of a message at once.
type ValidationError struct {
	Fields []FieldError `json:"errors"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Reason
	}
	return "invalid message: " + strings.Join(parts, "; ")
}

// ErrTooLarge marks a validation error caused by the SQS size limit, so that
// an HTTP layer can answer 413 instead of 400.
var ErrTooLarge = errors.New("message too large for SQS")

func (e *ValidationError) Is(target error) bool {
	if target != ErrTooLarge {
		return false
	}
	for _, f := range e.Fields {
		if f.Field == sizeField {
			return true
		}
	}
	return false
}

const sizeField = "message"

// MediaUnsupported is why a message with mediaUrls is refused (API: 400;
// scraper: dead-lettered): the scraper does not attach files yet, and
// typing a URL into the chat is not what the sender meant.
const MediaUnsupported = "attaching media is not supported yet; send the text alone (docs/api.md)"

// validated mirrors Message with the rules as struct tags; kept apart from
// Message so that the payload type stays a plain struct.
type validated struct {
	MessageID   string            `json:"messageId" validate:"required,uuid4"`
	UserID      string            `json:"userId" validate:"required,notblank,max=128,group_id"`
	CreatorID   string            `json:"creatorId" validate:"omitempty,notblank,max=128,safe_id"`
	RecipientID string            `json:"recipientId" validate:"required,notblank,max=128,safe_id"`
	Content     string            `json:"content" validate:"required,notblank,max=5000"`
	MediaURLs   []string          `json:"mediaUrls" validate:"omitempty,max=10,dive,required,max=2048,https_url"`
	Metadata    map[string]string `json:"metadata" validate:"omitempty,max=50,dive,keys,required,max=64,endkeys,max=4096"`
	Priority    Priority          `json:"priority" validate:"omitempty,oneof=low normal high"`
}

var structValidator = sync.OnceValue(func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		return strings.SplitN(f.Tag.Get("json"), ",", 2)[0]
	})
	// Registration only fails for an empty tag or a nil function.
	_ = v.RegisterValidation("notblank", func(fl validator.FieldLevel) bool {
		return strings.TrimSpace(fl.Field().String()) != ""
	})
	_ = v.RegisterValidation("https_url", func(fl validator.FieldLevel) bool {
		u, err := url.Parse(fl.Field().String())
		return err == nil && u.Scheme == "https" && u.Host != ""
	})
	// The creator key becomes the FIFO MessageGroupId, which SQS limits to
	// ASCII letters, digits and punctuation; a key outside that set would make
	// every forward of the message fail.
	_ = v.RegisterValidation("group_id", func(fl validator.FieldLevel) bool {
		for _, r := range fl.Field().String() {
			if r < 0x21 || r > 0x7e {
				return false
			}
		}
		return true
	})
	// Creator and recipient ids end up in URLs the scraper opens and in
	// Redis keys: letters, digits, '_', '-', '.', '@', starting with a letter
	// or digit, and never "..".
	_ = v.RegisterValidation("safe_id", func(fl validator.FieldLevel) bool {
		return IsSafeID(fl.Field().String())
	})
	return v
})

// IsSafeID reports whether s is a creator or recipient id the pipeline
// accepts (see the safe_id rule).
func IsSafeID(s string) bool {
	if s == "" || strings.Contains(s, "..") {
		return false
	}
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("_-.@", r)) {
			return false
		}
	}
	return true
}

// sqsAllowed reports whether SQS accepts r in a message body or attribute:
// #x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD | #x10000–#x10FFFF.
func sqsAllowed(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// Clip cuts s to at most n runes, for echoing untrusted text in errors and logs.
func Clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// Validate checks every rule and returns a *ValidationError listing all the
// fields at fault, or nil.
func (m Message) Validate() error {
	var errs []FieldError
	add := func(field, reason string) { errs = append(errs, FieldError{Field: field, Reason: reason}) }

	// encoding/json replaces invalid UTF-8 on the wire, so this only catches
	// messages built in Go; Parse rejects bad bytes before decoding.
	m.eachString(func(field, s string) {
		if !utf8.ValidString(s) {
			add(field, "must be valid UTF-8")
			return
		}
		// SQS refuses a message holding any other character: accepting it
		// would mean a 202 for a message no queue can ever hold.
		for _, r := range s {
			if !sqsAllowed(r) {
				add(field, fmt.Sprintf("contains U+%04X, a character SQS does not accept", r))
				return
			}
		}
	})

	err := structValidator().Struct(validated{
		MessageID: m.MessageID, UserID: m.UserID, CreatorID: m.CreatorID,
		RecipientID: m.RecipientID, Content: m.Content, MediaURLs: m.MediaURLs,
		Metadata: m.Metadata, Priority: m.Priority,
	})
	var verrs validator.ValidationErrors
	if errors.As(err, &verrs) {
		for _, fe := range verrs {
			add(fieldPath(fe), reason(fe))
		}
	} else if err != nil {
		add(sizeField, err.Error())
	}
	if m.Timestamp.IsZero() {
		add("timestamp", "is required")
	}
	if m.CorrelationID != "" && !ValidCorrelationID(m.CorrelationID) {
		add("correlationId", fmt.Sprintf("must be 1 to %d letters, digits, '-', '_' or '.', starting with a letter or digit", MaxCorrelationIDLength))
	}

	if len(errs) == 0 {
		if size, err := m.SQSSize(); err != nil {
			add(sizeField, err.Error())
		} else if size > MaxSQSMessageBytes-DownstreamAttributeReserve {
			add(sizeField, fmt.Sprintf("body and attributes are %d bytes; the limit is %d",
				size, MaxSQSMessageBytes-DownstreamAttributeReserve))
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

func (m Message) eachString(f func(field, s string)) {
	f("messageId", m.MessageID)
	f("userId", m.UserID)
	f("creatorId", m.CreatorID)
	f("recipientId", m.RecipientID)
	f("content", m.Content)
	f("priority", string(m.Priority))
	for i, u := range m.MediaURLs {
		f(fmt.Sprintf("mediaUrls[%d]", i), u)
	}
	for k, v := range m.Metadata {
		f("metadata", k)
		f(fmt.Sprintf("metadata[%s]", k), v)
	}
}

// fieldPath turns "validated.mediaUrls[1]" into "mediaUrls[1]".
func fieldPath(fe validator.FieldError) string {
	ns := fe.Namespace()
	if i := strings.IndexByte(ns, '.'); i >= 0 {
		ns = ns[i+1:]
	}
	return ns
}

func reason(fe validator.FieldError) string {
	isString := fe.Kind() == reflect.String
	switch fe.Tag() {
	case "required":
		return "is required"
	case "notblank":
		return "must not be blank"
	case "uuid4":
		return "must be a UUID v4"
	case "https_url":
		return "must be an https URL with a host"
	case "safe_id":
		return "must contain only letters, digits and _ - . @, start with a letter or digit, and not contain \"..\""
	case "group_id":
		return "must contain only ASCII letters, digits and punctuation (it is the SQS message group id)"
	case "oneof":
		return "must be one of: " + fe.Param()
	case "max":
		if isString {
			return "must be at most " + fe.Param() + " characters"
		}
		return "must have at most " + fe.Param() + " items"
	}
	return "fails rule " + fe.Tag()
}
