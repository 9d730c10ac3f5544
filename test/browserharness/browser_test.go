package browserharness_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/playwright-community/playwright-go"

	"github.com/huntaze/message-pipeline/test/browserharness"
)

func TestBrowser_RendersPageAndClicksButton(t *testing.T) {
	// GIVEN a page on 127.0.0.1 whose button changes the text
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!doctype html><title>t</title>
<p id="status">waiting</p>
<button id="go" onclick="document.getElementById('status').textContent='clicked'">Send</button>`)
	}))
	t.Cleanup(srv.Close)
	s := browserharness.StartBrowser(t)
	page, err := s.Browser.NewPage()
	if err != nil {
		t.Fatalf("new page: %v", err)
	}

	// WHEN Chromium opens it and clicks the button
	if _, err := page.Goto(srv.URL, playwright.PageGotoOptions{Timeout: playwright.Float(10000)}); err != nil {
		t.Fatalf("goto: %v", err)
	}
	before, _ := page.Locator("#status").TextContent()
	if err := page.Locator("#go").Click(playwright.LocatorClickOptions{Timeout: playwright.Float(5000)}); err != nil {
		t.Fatalf("click: %v", err)
	}

	// THEN the page ran its script
	after, err := page.Locator("#status").TextContent()
	if err != nil || before != "waiting" || after != "clicked" {
		t.Fatalf("status before %q after %q (%v); want waiting then clicked", before, after, err)
	}
}
