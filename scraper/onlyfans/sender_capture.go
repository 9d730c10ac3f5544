package onlyfans

import (
	"os"
	"time"

	"github.com/playwright-community/playwright-go"
)

// endTrace ends the send's trace chunk: kept in art when there is a
// capture (the send did not succeed), discarded otherwise.
func (s *Sender) endTrace(c *chat, art *Artifacts) *Artifacts {
	tr := c.cc.ctx.Tracing()
	if art == nil {
		_ = tr.StopChunk()
		return nil
	}
	f, err := os.CreateTemp("", "trace-*.zip")
	if err != nil {
		_ = tr.StopChunk()
		return art
	}
	path := f.Name()
	_ = f.Close()
	defer os.Remove(path)
	if tr.StopChunk(path) == nil {
		art.Trace, _ = os.ReadFile(path)
	}
	return art
}

func capture(page playwright.Page) *Artifacts {
	if page == nil || page.IsClosed() {
		return nil
	}
	a := &Artifacts{}
	// The viewport only: enough to see what went wrong, less of the
	// creator's conversation than a full page.
	a.Screenshot, _ = page.Screenshot(playwright.PageScreenshotOptions{FullPage: playwright.Bool(false), Timeout: playwright.Float(5000)})
	// Content has no timeout and waits for a navigation in flight (a
	// hanging site): given up after a while (the page is then closed as
	// unhealthy, which ends the call).
	html := make(chan string, 1)
	go func() {
		h, _ := page.Content()
		html <- h
	}()
	select {
	case a.HTML = <-html:
	case <-time.After(captureTimeout):
	}
	return a
}

// captureTimeout bounds the page HTML of a capture.
const captureTimeout = 5 * time.Second
