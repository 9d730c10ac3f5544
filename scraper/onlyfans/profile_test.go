package onlyfans_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
)

func TestEveryBuiltInProfileLoadsAndValidates(t *testing.T) {
	t.Parallel()
	// GIVEN the profiles the binary embeds
	names := profiles.Names()
	if !slices.Contains(names, profiles.Default) || !slices.Contains(names, profiles.SPA) {
		t.Fatalf("built-in profiles %v: want %s and %s", names, profiles.Default, profiles.SPA)
	}
	for _, name := range names {
		// WHEN each is loaded by name THEN it parses and validates
		p, err := onlyfans.BuiltinProfile(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// AND the default is the document per chat, the SPA's switches in the app
	if p, _ := onlyfans.BuiltinProfile(profiles.Default); p.InApp != nil {
		t.Errorf("%s switches chats inside the app; the default is a document per chat", profiles.Default)
	}
	if p, _ := onlyfans.BuiltinProfile(profiles.SPA); p.InApp == nil {
		t.Errorf("%s has no inApp", profiles.SPA)
	}
}

func TestSelectProfile_DefaultNameAndFile(t *testing.T) {
	t.Parallel()
	// GIVEN the default name (the settings' default) THEN the default
	// profile, as before built-in names existed
	got, err := onlyfans.SelectProfile(profiles.Default, "")
	if err != nil || !reflect.DeepEqual(got, onlyfans.DefaultProfile()) {
		t.Fatalf("default name: %+v, %v; want the default profile", got.Name, err)
	}
	// GIVEN a built-in name THEN that profile
	if got, err := onlyfans.SelectProfile(profiles.SPA, ""); err != nil || !reflect.DeepEqual(got, onlyfans.SPAProfile()) {
		t.Errorf("SITE_PROFILE=%s: %q, %v", profiles.SPA, got.Name, err)
	}
	// GIVEN an unknown name THEN an error naming the setting and the known names
	_, err = onlyfans.SelectProfile("onlyfans-sap", "")
	if !errors.Is(err, profiles.ErrUnknown) || !strings.Contains(err.Error(), "SITE_PROFILE:") || !strings.Contains(err.Error(), profiles.SPA) {
		t.Errorf("unknown name: %v", err)
	}
	// GIVEN a file THEN the file wins over the name
	b, err := profiles.Lookup(profiles.Default)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "site.json")
	if err := os.WriteFile(file, []byte(strings.Replace(string(b), `"onlyfans-web"`, `"from-the-file"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := onlyfans.SelectProfile(profiles.SPA, file); err != nil || got.Name != "from-the-file" || got.InApp != nil {
		t.Errorf("file over name: %q (inApp %v), %v", got.Name, got.InApp != nil, err)
	}
	// GIVEN a missing file THEN the error names SITE_PROFILE_FILE
	if _, err := onlyfans.SelectProfile("", filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "SITE_PROFILE_FILE:") {
		t.Errorf("missing file: %v", err)
	}
}

func TestBuiltinProfileNamesAreNotPaths(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"", "../onlyfans", "onlyfans.json", "*", "onlyfans/x"} {
		if _, err := profiles.Lookup(name); !errors.Is(err, profiles.ErrUnknown) {
			t.Errorf("Lookup(%q): %v, want ErrUnknown", name, err)
		}
	}
}

func TestBuiltinProfiles_AShortHistorySettleOnlyWhereTheAppConfirmsTheRender(t *testing.T) {
	t.Parallel()
	// GIVEN each built-in profile THEN a settle shorter than the default
	// (two reads of the history that must agree) comes only with an
	// identity the app sets once the chat's history rendered (inApp): the
	// sender reads the history only after that confirmation, so the
	// settle guards only a render that continues after it
	for _, name := range profiles.Names() {
		p, err := onlyfans.BuiltinProfile(name)
		if err != nil {
			t.Fatal(err)
		}
		short := p.HistoryReady.StableMs > 0 && p.HistoryReady.StableMs < int(onlyfans.DefaultHistoryStable.Milliseconds())
		if short && p.InApp == nil {
			t.Errorf("%s: historyReady.stableMs %d without inApp (nothing says the history finished rendering)", name, p.HistoryReady.StableMs)
		}
	}
}

func TestSendRequest_OwnRefusalIsAJSONBodyHoldingTheRefusalField(t *testing.T) {
	// GIVEN the built-in profile's send request (refusalField "error.code")
	p, err := onlyfans.BuiltinProfile(profiles.Default)
	if err != nil {
		t.Fatal(err)
	}
	sr := p.SendRequest
	for body, want := range map[string]bool{
		// WHEN a 4xx body is the API's envelope THEN it is its own refusal
		`{"error":{"code":403,"message":"blocked"}}`: true,
		`{"error":{"code":0}}`:                       true,
		// WHEN it is a front's JSON in the API's place THEN it is not
		`{"error":"Not found"}`:     false,
		`{"message":"Forbidden"}`:   false,
		`{"error":{"message":"x"}}`: false,
		`{"error":{"code":null}}`:   false,
		`[{"error":{"code":1}}]`:    false,
		`<html>Attention Required!`: false,
		``:                          false,
	} {
		if got := sr.OwnRefusal([]byte(body)); got != want {
			t.Errorf("OwnRefusal(%q) = %t, want %t", body, got, want)
		}
	}
	// AND a profile without the field takes every 4xx body as the API's
	if !(onlyfans.SendRequest{}).OwnRefusal([]byte(`<html>`)) {
		t.Error("an empty RefusalField refused a body")
	}
}

func TestSendRequest_NamesFanOnlyWithTheFansIDAsAPathSegment(t *testing.T) {
	// GIVEN every built-in profile's send request (fanInPath: review 22 W B)
	for _, name := range profiles.Names() {
		p, err := onlyfans.BuiltinProfile(name)
		if err != nil {
			t.Fatal(err)
		}
		sr := p.SendRequest
		for u, want := range map[string]bool{
			// WHEN the request names the message's fan THEN it is let through
			"https://onlyfans.com/api2/v2/chats/fan-1/messages":       true,
			"https://onlyfans.com/api2/v2/chats/fan%2D1/messages?x=1": true,
			// WHEN it names another fan, or one whose id merely contains this one THEN it is not
			"https://onlyfans.com/api2/v2/chats/fan-9/messages":  false,
			"https://onlyfans.com/api2/v2/chats/fan-10/messages": false,
			"https://onlyfans.com/api2/v2/chats/messages?fan-1":  false,
		} {
			if got := sr.NamesFan(u, "fan-1"); got != want {
				t.Errorf("%s: NamesFan(%q) = %t, want %t", name, u, got, want)
			}
		}
		// AND a fan whose id is one of the route's words is found only in
		// the route's wildcard (review 22 AA A)
		for u, want := range map[string]bool{
			"https://onlyfans.com/api2/v2/chats/messages/messages": true,
			"https://onlyfans.com/api2/v2/chats/fan-9/messages":    false,
		} {
			if got := sr.NamesFan(u, "messages"); got != want {
				t.Errorf("%s: NamesFan(%q, messages) = %t, want %t", name, u, got, want)
			}
		}
		if sr.NamesFan("https://onlyfans.com/api2/v2/chats/fan-9/messages", "chats") {
			t.Errorf("%s: fan chats passed fan-9's send request", name)
		}
	}
	// AND a route without a wildcard finds the fan in a segment that is
	// none of its own words
	plain := onlyfans.SendRequest{URL: "**/api/send", FanInPath: true}
	if !plain.NamesFan("https://x/api/fan-1/send", "fan-1") || plain.NamesFan("https://x/api/send", "send") {
		t.Error("a route without a wildcard: the fan's segment not found, or the route's own word taken for the fan")
	}
	// AND a profile without fanInPath checks nothing
	if !(onlyfans.SendRequest{}).NamesFan("https://x/api/other", "fan-1") {
		t.Error("a send request without fanInPath was checked")
	}
}
