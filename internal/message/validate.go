package message

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
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

// The rules of each field, checked in this order; a field reports its
// first broken rule only. Written out rather than as struct tags for a
// reflection-based validator: go-playground/validator looks methods up by
// name, which makes the linker keep every exported method of every type in
// the binary (half of each Lambda: the api bootstrap went from 28.0 to
// 14.5 MB without it).
// oracle_test.go checks these rules against that validator's reading of
// the former tags.
var (
	userRules      = []rule{required, notBlank, maxChars(MaxIDLength), groupID}
	safeIDRules    = []rule{required, notBlank, maxChars(MaxIDLength), safeID}
	contentRules   = []rule{required, notBlank, maxChars(MaxContentLength)}
	mediaURLRules  = []rule{required, maxChars(MaxMediaURLLength), httpsURL}
	metaKeyRules   = []rule{required, maxChars(MaxMetadataKeyLen)}
	metaValueRules = []rule{maxChars(MaxMetadataValLen)}
)

// rule returns why s breaks it, or "".
type rule func(s string) string

func required(s string) string { return unless(s != "", "is required") }

func notBlank(s string) string { return unless(strings.TrimSpace(s) != "", "must not be blank") }

func maxChars(n int) rule {
	return func(s string) string {
		return unless(utf8.RuneCountInString(s) <= n, "must be at most "+strconv.Itoa(n)+" characters")
	}
}

func maxItems(n, have int) string {
	return unless(have <= n, "must have at most "+strconv.Itoa(n)+" items")
}

func uuid4(s string) string { return unless(isUUID4(s), "must be a UUID v4") }

func httpsURL(s string) string {
	u, err := url.Parse(s)
	return unless(err == nil && u.Scheme == "https" && u.Host != "", "must be an https URL with a host")
}

// groupID: the creator key becomes the FIFO MessageGroupId, which SQS
// limits to ASCII letters, digits and punctuation; a key outside that set
// would make every forward of the message fail.
func groupID(s string) string {
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return "must contain only ASCII letters, digits and punctuation (it is the SQS message group id)"
		}
	}
	return ""
}

// safeID: creator and recipient ids end up in URLs the scraper opens and
// in Redis keys.
func safeID(s string) string {
	return unless(IsSafeID(s), "must contain only letters, digits and _ - . @, start with a letter or digit, and not contain \"..\"")
}

func priority(s string) string {
	return unless(Priority(s).Valid(), "must be one of: low normal high")
}

func unless(ok bool, reason string) string {
	if ok {
		return ""
	}
	return reason
}

// isUUID4 matches ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$.
func isUUID4(s string) bool {
	if len(s) != 36 || s[14] != '4' || !strings.ContainsRune("89ab", rune(s[19])) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// firstBroken is the reason of the first rule s breaks, or "".
func firstBroken(s string, rules []rule) string {
	for _, r := range rules {
		if why := r(s); why != "" {
			return why
		}
	}
	return ""
}

// fieldErrors checks every field's rules, fields in the order of the JSON
// form; an optional field (creatorId, mediaUrls, metadata, priority) is
// checked only when present.
func (m Message) fieldErrors(add func(field, reason string)) {
	check := func(field, s string, rules []rule) {
		if why := firstBroken(s, rules); why != "" {
			add(field, why)
		}
	}
	check("messageId", m.MessageID, []rule{required, uuid4})
	check("userId", m.UserID, userRules)
	if m.CreatorID != "" {
		check("creatorId", m.CreatorID, safeIDRules)
	}
	check("recipientId", m.RecipientID, safeIDRules)
	check("content", m.Content, contentRules)
	if m.MediaURLs != nil {
		if why := maxItems(MaxMediaURLs, len(m.MediaURLs)); why != "" {
			add("mediaUrls", why)
		} else {
			for i, u := range m.MediaURLs {
				check("mediaUrls["+strconv.Itoa(i)+"]", u, mediaURLRules)
			}
		}
	}
	if m.Metadata != nil {
		if why := maxItems(MaxMetadataKeys, len(m.Metadata)); why != "" {
			add("metadata", why)
		} else {
			for _, k := range slices.Sorted(maps.Keys(m.Metadata)) {
				check("metadata["+k+"]", k, metaKeyRules)
				check("metadata["+k+"]", m.Metadata[k], metaValueRules)
			}
		}
	}
	check("priority", string(m.Priority), []rule{priority})
}

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

	m.fieldErrors(add)
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
