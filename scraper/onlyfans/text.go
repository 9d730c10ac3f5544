package onlyfans

import (
	"fmt"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// TextRules say what the site's composer and server do to a typed text,
// so that the sender types what the site will store and counts the chat's
// copies of a text the way the site stores it (a recovery that compares the
// raw queued text finds no copy of a normalised one, and sends it again).
type TextRules struct {
	// Newlines: "lf" (the default, what every textarea does: CRLF and a
	// lone CR become LF) or "keep".
	Newlines string `json:"newlines"`
}

func (r TextRules) validate() error {
	switch r.Newlines {
	case "", "lf", "keep":
		return nil
	}
	return fmt.Errorf(`text.newlines must be "lf" or "keep", got %q`, r.Newlines)
}

// Typed is the text as typed into the composer.
func (r TextRules) Typed(s string) string {
	if r.Newlines == "keep" {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// Key is what two texts are compared by: the typed form, then NFC, without
// invisible code points (format characters such as U+200B..U+200D, U+2060,
// U+00AD and the BOM, variation selectors such as U+FE0E/U+FE0F, and the
// other default-ignorable ones: a site may drop any of them), runs of white
// space as one space, no leading or trailing white space. It may only
// be coarser than what the site does, never finer: a coarser key counts
// near-identical texts alike before and after a click (the difference of
// the two counts still says whether this click sent), a finer one misses
// the site's copy and sends twice.
func (r TextRules) Key(s string) string {
	visible := strings.Map(func(c rune) rune {
		if invisible(c) {
			return -1
		}
		return c
	}, norm.NFC.String(r.Typed(s)))
	return strings.Join(strings.FieldsFunc(visible, unicode.IsSpace), " ")
}

// invisible reports a code point a site may drop without a visible change:
// format characters (Cf: zero-width space and joiners, word joiner, soft
// hyphen, BOM, direction marks), variation selectors and the other
// default-ignorable code points.
func invisible(c rune) bool {
	return unicode.Is(unicode.Cf, c) || unicode.Is(unicode.Variation_Selector, c) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, c)
}
