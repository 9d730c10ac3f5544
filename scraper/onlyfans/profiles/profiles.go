// Package profiles holds the built-in site profiles (onlyfans.Profile as
// JSON), embedded in the binary: the image ships no profile file, and a
// deployment picks one by name (SITE_PROFILE). It links nothing else, so
// the settings (and through them the CDK stack) can check a name without
// the browser.
package profiles

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.json
var files embed.FS

// Default is the profile a scraper given neither SITE_PROFILE nor
// SITE_PROFILE_FILE uses: OnlyFans' web app with a document per chat.
const Default = "onlyfans"

// SPA is the single-page app's profile (chats switched inside the app).
const SPA = "onlyfans-spa"

// ErrUnknown is the error (wrapped) of a name no built-in profile has.
var ErrUnknown = errors.New("unknown built-in site profile")

// Names lists the built-in profiles (each file's name without .json),
// sorted.
func Names() []string {
	entries, err := fs.Glob(files, "*.json")
	if err != nil {
		panic("embedded profiles: " + err.Error()) // a constant pattern
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e, ".json"))
	}
	sort.Strings(names)
	return names
}

// Lookup returns the built-in profile name's JSON; an unknown name is an
// error that lists the known ones.
func Lookup(name string) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, "/\\.*?[") {
		return nil, unknown(name)
	}
	b, err := files.ReadFile(name + ".json")
	if err != nil {
		return nil, unknown(name)
	}
	return b, nil
}

func unknown(name string) error {
	return fmt.Errorf("%w %q (built in: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
}
