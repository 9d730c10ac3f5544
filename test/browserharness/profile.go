package browserharness

import (
	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
)

// SiteProfile is the site profile that reaches the fake site's variant
// the tests run against (fakesite.TestVariant, SCRAPER_TEST_PROFILE): the
// single-page app's (chats switched inside the app) for spa, the default
// (a document per chat) otherwise. The scraper's tests take the profile
// from here and the site from fakesite.Start, so that the same tests run
// against either by switching the variable only.
func SiteProfile() onlyfans.Profile {
	if fakesite.TestVariant().Name == fakesite.VariantSPA.Name {
		return onlyfans.SPAProfile()
	}
	return onlyfans.DefaultProfile()
}
