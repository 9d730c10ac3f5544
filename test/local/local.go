// Package local adapts devstack (the pipeline `make dev` runs) to tests:
// the fake OnlyFans site and a fault proxy in front of the API's SQS
// endpoint, started and stopped with the test.
package local

import (
	"syscall"
	"time"

	"github.com/huntaze/message-pipeline/devstack"
	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/test/harness"
)

// Token returns a signed API token (see devstack.Token).
func Token(user string, admin bool, creators ...string) string {
	return devstack.Token(user, admin, creators...)
}

// Options of a test pipeline: the stack's, plus the creators the fake site
// knows.
type Options struct {
	devstack.Options
	Creators []string
}

// Pipeline is a running local pipeline with its fake site.
type Pipeline struct {
	*devstack.Stack
	t        harness.T
	Site     *fakesite.Site
	SQSFault *harness.FaultProxy // between the API and fauxqs
	window   time.Duration
	limit    int
	creators []string
}

// Start starts the stack against a fake site; it stops with the test.
func Start(t harness.T, o Options) *Pipeline {
	t.Helper()
	p := &Pipeline{t: t, creators: o.Creators}
	if o.SiteURL == "" {
		p.Site = fakesite.Start(t)
		o.SiteURL = p.Site.URL
		o.Sessions = map[string]string{}
		for _, c := range o.Creators {
			o.Sessions[c] = p.Site.AddCreator(c)
		}
	}
	o.APISQSEndpoint = func(emulator string) (string, error) {
		p.SQSFault = harness.StartFaultProxy(t, emulator, "AmazonSQS.SendMessage")
		return p.SQSFault.URL, nil
	}
	s, err := devstack.Start(o.Options)
	if err != nil {
		t.Fatalf("local: %v", err)
	}
	p.Stack = s
	p.limit, p.window = s.Wiring.Limiter.Limit.Count, s.Wiring.Limiter.Limit.Window
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Logf("local: close: %v", err)
		}
	})
	return p
}

// StartScraper restarts the scraper process.
func (p *Pipeline) StartScraper() {
	p.t.Helper()
	if err := p.Stack.StartScraper(); err != nil {
		p.t.Fatalf("local: %v", err)
	}
}

// StopScraper stops the scraper with sig and returns its exit code.
func (p *Pipeline) StopScraper(sig syscall.Signal) int {
	p.t.Helper()
	code, err := p.Stack.StopScraper(sig)
	if err != nil {
		p.t.Fatalf("local: %v\n%s", err, p.ScraperOutput())
	}
	return code
}

// Summary adds the fake site's per-creator counts to the stack's summary.
func (p *Pipeline) Summary() string {
	return p.Stack.Summary() + p.Site.Summary(p.creators, p.limit, p.window)
}
