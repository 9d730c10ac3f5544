package message

import (
	"math/rand/v2"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-playground/validator/v10"
)

// oracleValidated is the struct the rules were once written on, as tags for
// go-playground/validator; the validator is kept here, in the tests only,
// as the oracle the hand-written rules must agree with.
type oracleValidated struct {
	MessageID   string            `json:"messageId" validate:"required,uuid4"`
	UserID      string            `json:"userId" validate:"required,notblank,max=128,group_id"`
	CreatorID   string            `json:"creatorId" validate:"omitempty,notblank,max=128,safe_id"`
	RecipientID string            `json:"recipientId" validate:"required,notblank,max=128,safe_id"`
	Content     string            `json:"content" validate:"required,notblank,max=5000"`
	MediaURLs   []string          `json:"mediaUrls" validate:"omitempty,max=10,dive,required,max=2048,https_url"`
	Metadata    map[string]string `json:"metadata" validate:"omitempty,max=50,dive,keys,required,max=64,endkeys,max=4096"`
	Priority    Priority          `json:"priority" validate:"omitempty,oneof=low normal high"`
}

func oracleValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string { return strings.SplitN(f.Tag.Get("json"), ",", 2)[0] })
	_ = v.RegisterValidation("notblank", func(fl validator.FieldLevel) bool { return strings.TrimSpace(fl.Field().String()) != "" })
	_ = v.RegisterValidation("https_url", func(fl validator.FieldLevel) bool {
		u, err := url.Parse(fl.Field().String())
		return err == nil && u.Scheme == "https" && u.Host != ""
	})
	_ = v.RegisterValidation("group_id", func(fl validator.FieldLevel) bool { return groupID(fl.Field().String()) == "" })
	_ = v.RegisterValidation("safe_id", func(fl validator.FieldLevel) bool { return IsSafeID(fl.Field().String()) })
	return v
}

// oracleReason is the former mapping of a validator tag to a reason.
func oracleReason(fe validator.FieldError) string {
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
		return safeID("..")
	case "group_id":
		return groupID(" ")
	case "oneof":
		return "must be one of: " + fe.Param()
	case "max":
		if fe.Kind() == reflect.String {
			return "must be at most " + fe.Param() + " characters"
		}
		return "must have at most " + fe.Param() + " items"
	}
	return "fails rule " + fe.Tag()
}

func oracleErrors(t *testing.T, v *validator.Validate, m Message) []FieldError {
	err := v.Struct(oracleValidated{m.MessageID, m.UserID, m.CreatorID, m.RecipientID, m.Content, m.MediaURLs, m.Metadata, m.Priority})
	if err == nil {
		return nil
	}
	verrs, ok := err.(validator.ValidationErrors)
	if !ok {
		t.Fatalf("oracle: %v", err)
	}
	var out []FieldError
	for _, fe := range verrs {
		ns := fe.Namespace()
		out = append(out, FieldError{Field: ns[strings.IndexByte(ns, '.')+1:], Reason: oracleReason(fe)})
	}
	// The validator walks a map in Go's random order; the rules walk its
	// keys sorted. Everything else must come in the same order.
	slices.SortStableFunc(out, func(a, b FieldError) int {
		if strings.HasPrefix(a.Field, "metadata[") && strings.HasPrefix(b.Field, "metadata[") {
			return strings.Compare(a.Field[len("metadata["):len(a.Field)-1], b.Field[len("metadata["):len(b.Field)-1])
		}
		return 0
	})
	return out
}

// randomText draws from the values at each rule's edge.
func randomText(r *rand.Rand) string {
	pieces := []string{"", " ", "\t\n", "a", "Z9", "é", "😀", "..", ".", "@", "_", "-", "user 1", "creator-9", "a..b",
		"https://cdn.example.com/a.jpg", "http://cdn.example.com/a.jpg", "https:///a", "https://h", "ftp://h/x", "%zz",
		"6ba7b810-9dad-41d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6BA7B810-9DAD-41D1-80B4-00C04FD430C8",
		"6ba7b810-9dad-41d1-c0b4-00c04fd430c8", "6ba7b810x9dad-41d1-80b4-00c04fd430c8", "low", "normal", "high", "urgent", "~", "\x7f"}
	var b strings.Builder
	for range r.IntN(3) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	if r.IntN(8) == 0 {
		lengths := []int{63, 64, 65, 127, 128, 129, 2047, 2048, 2049, 4096, 4097, 4999, 5000, 5001}
		b.WriteString(strings.Repeat([]string{"x", "é", " "}[r.IntN(3)], lengths[r.IntN(len(lengths))]))
	}
	return b.String()
}

func randomMessage(r *rand.Rand) Message {
	m := Message{MessageID: randomText(r), UserID: randomText(r), CreatorID: randomText(r), RecipientID: randomText(r),
		Content: randomText(r), Priority: Priority(randomText(r))}
	if n := r.IntN(14) - 2; n >= 0 {
		m.MediaURLs = make([]string, n)
		for i := range m.MediaURLs {
			m.MediaURLs[i] = randomText(r)
		}
	}
	if n := r.IntN(56) - 3; n >= 0 {
		m.Metadata = map[string]string{}
		for range n {
			m.Metadata[randomText(r)] = randomText(r)
		}
	}
	return m
}

func TestFieldRulesAgreeWithTheFormerValidatorTags(t *testing.T) {
	v := oracleValidator()
	r := rand.New(rand.NewPCG(27, 5))
	for i := range 4000 {
		m := randomMessage(r)
		want := oracleErrors(t, v, m)
		var got []FieldError
		m.fieldErrors(func(field, reason string) { got = append(got, FieldError{field, reason}) })
		if !slices.Equal(got, want) {
			at := 0
			for at < min(len(got), len(want)) && got[at] == want[at] {
				at++
			}
			t.Fatalf("message %d: %d errors by the rules, %d by the validator, first difference at %d:\nrules     %.300v\nvalidator %.300v",
				i, len(got), len(want), at, got[at:], want[at:])
		}
	}
}
