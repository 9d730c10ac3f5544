// Command dev runs the whole pipeline on this machine (make dev): emulators,
// the API, the rate limiter, the replay, the scraper and the fake OnlyFans
// site, then prints how to send a message and a live summary until Ctrl-C.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/huntaze/message-pipeline/test/local"
)

func main() {
	creators := flag.String("creators", "creator-a,creator-b,creator-c", "creators with a session on the fake site")
	limit := flag.Int("limit", 10, "messages per window per creator")
	window := flag.Duration("window", time.Minute, "rolling window")
	site := flag.String("site", "", "send to this site instead of the fake OnlyFans (needs CREDENTIALS in the scraper env)")
	every := flag.Duration("summary", 5*time.Second, "how often to print the summary")
	logFile := flag.String("logs", ".dev/pipeline.log", "where every component's JSON logs go")
	flag.Parse()

	r := &local.Runner{}
	if err := os.MkdirAll(".dev", 0o755); err != nil {
		r.Fatalf("%v", err)
	}
	logs, err := os.Create(*logFile)
	if err != nil {
		r.Fatalf("%v", err)
	}
	defer logs.Close()
	names := strings.Split(*creators, ",")
	p := local.Start(r, local.Options{Creators: names, Limit: *limit, Window: *window, ReturnSlack: time.Second, LimiterPollers: 4, SiteURL: *site, Logs: logs})

	// Settings for `make replay` against this pipeline.
	env := fmt.Sprintf("AWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\nAWS_REGION=us-east-1\nAWS_EC2_METADATA_DISABLED=true\nAWS_ENDPOINT_URL=%s\nAWS_ENDPOINT_URL_DYNAMODB=%s\n"+
		"RATE_LIMITER_QUEUE_URL=%s\nRATE_LIMITER_DLQ_URL=%s\nWORKFLOWS_QUEUE_URL=%s\nWORKFLOWS_DLQ_URL=%s\nFALLBACK_TABLE=huntaze-message-fallback-dev\nIDEMPOTENCY_TABLE=huntaze-idempotency-dev\n",
		p.AWS.Endpoint, p.DDB.Endpoint, p.Queues.RateLimiter.URL, p.Queues.RateLimiter.DLQURL, p.Queues.Workflows.URL, p.Queues.Workflows.DLQURL)
	_ = os.WriteFile(".dev/env", []byte(env), 0o600)
	r.Cleanup(func() { _ = os.Remove(".dev/env") })

	fmt.Printf(`
The pipeline runs (limit %d per %s per creator). Send a message:

  curl -s -X POST %s/api/onlyfans/messages/send \
    -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer %s' \
    -d '{"creatorId":"%s","recipientId":"fan-1","content":"hello from make dev"}'

Status:   curl -s %s/api/onlyfans/messages/status -H 'Authorization: Bearer %s'
Replay:   make replay      Logs: %s      Fake site: %s/my/chats/chat/fan-1
Ctrl-C stops everything.

`, *limit, *window, p.APIURL, local.Token("user-"+names[0], false, names[0]), names[0], p.APIURL, local.Token("ops-"+names[0], true), *logFile, siteURL(p))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			fmt.Println("\nstopping…")
			r.Stop()
			fmt.Println("stopped")
			return
		case <-tick.C:
			fmt.Printf("[%s] %s", time.Now().Format("15:04:05"), p.Summary())
		}
	}
}

func siteURL(p *local.Pipeline) string {
	if p.Site == nil {
		return "(external)"
	}
	return p.Site.URL
}
