// Command dev runs the whole pipeline on this machine (make dev): emulators,
// the API, the rate limiter and the replay (each Lambda's main under the
// Lambda Runtime Interface Emulator, behind the event source the stack
// gives it) and the scraper, with the dev stack's settings (devstack),
// against the fake OnlyFans site; then prints how to send a message and a
// live summary until Ctrl-C.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/huntaze/message-pipeline/devstack"
	"github.com/huntaze/message-pipeline/devstack/fakesite"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	creators := flag.String("creators", "creator-a,creator-b,creator-c", "creators with a session on the fake site")
	window := flag.Duration("window", 0, "scale the stack's rolling window (and what is tied to it) down to this (0: the stack's)")
	every := flag.Duration("summary", 5*time.Second, "how often to print the summary")
	logFile := flag.String("logs", ".dev/pipeline.log", "where every component's JSON logs go")
	flag.Parse()

	if err := os.MkdirAll(".dev", 0o755); err != nil {
		return err
	}
	logs, err := os.Create(*logFile)
	if err != nil {
		return err
	}
	defer logs.Close()
	latency := devstack.NewLatencyWatch(logs)
	site := fakesite.New()
	defer site.Close()
	names := strings.Split(*creators, ",")
	sessions := map[string]string{}
	for _, c := range names {
		sessions[c] = site.AddCreator(c)
	}
	s, err := devstack.Start(devstack.Options{SiteURL: site.URL, Sessions: sessions, Window: *window, Logs: latency})
	if err != nil {
		return err
	}
	limit := s.Wiring.Limiter.Limit
	defer func() {
		fmt.Println("\nstopping…")
		if err := s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stop:", err)
		}
		_ = os.Remove(".dev/env")
		fmt.Println("stopped")
	}()
	// The replay function's environment here, for `make replay`.
	replayEnv, err := s.ReplayEnv()
	if err != nil {
		return err
	}
	env := ""
	for k, v := range replayEnv {
		env += k + "=" + v + "\n"
	}
	if err := os.WriteFile(".dev/env", []byte(env), 0o600); err != nil {
		return err
	}

	fmt.Printf(`
The pipeline runs (limit %d per %s per creator). Send a message:

  curl -s -X POST %s/api/onlyfans/messages/send \
    -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer %s' \
    -d '{"creatorId":"%s","recipientId":"fan-1","content":"hello from make dev"}'

Status:   curl -s %s/api/onlyfans/messages/status -H 'Authorization: Bearer %s'
Replay:   make replay      Logs: %s      Fake site: %s/my/chats/chat/fan-1
Ctrl-C stops everything.

`, limit.Count, limit.Window, s.APIURL, devstack.Token("user-"+names[0], false, names[0]), names[0], s.APIURL, devstack.Token("ops-"+names[0], true), *logFile, site.URL)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-tick.C:
			fmt.Printf("[%s] %s%s%s", time.Now().Format("15:04:05"), s.Summary(), latency.Summary(), site.Summary(names, limit.Count, limit.Window))
		}
	}
}
