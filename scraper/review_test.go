package scraper_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/test/fakesite"
)

// Review of issue 22: attacks on the browser boundary's promises.

func TestReviewRedisForgettingTheAttemptMarkOfAnUnknownSendDoesNotSendItTwice(t *testing.T) {
	// GIVEN a site that records a send and goes down (reset) before
	// answering it, so that the read-back cannot run either, and Redis
	// losing its last writes at that moment (a failover with replication
	// lag: design section 3 says the attempt marks survive it "because the
	// recovery check reads the site itself")
	f := setup(t, testConfig())
	f.compress()
	flusher := f.redis.Client()
	var once sync.Once
	f.site.OnSent(func(fakesite.Sent) {
		once.Do(func() {
			f.site.SetOutage(fakesite.Reset)
			if err := flusher.FlushAll(context.Background()).Err(); err != nil {
				t.Error(err)
			}
			go func() { time.Sleep(3 * time.Second); f.site.SetOutage(fakesite.Up) }()
		})
	})
	f.enqueue(f.newMessage("creator-a", "sent while Redis failed over"))
	// WHEN the scraper runs through the outage and after it
	ok := f.runUntil(40*time.Second, func() bool { return f.queueCount(f.queues.Workflows.URL) == 0 })
	// THEN the fan has the message once
	if got := f.site.Texts("creator-a"); !ok || len(got) != 1 {
		t.Fatalf("ok %t, the site has %q (%d sends)\n%s", ok, got, len(got), f.logs)
	}
}
