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

// options are the command's flags.
type options struct {
	creators []string
	window   time.Duration
	every    time.Duration
	logFile  string
}

func parseFlags() options {
	creators := flag.String("creators", "creator-a,creator-b,creator-c", "creators with a session on the fake site")
	window := flag.Duration("window", 0, "scale the stack's rolling window (and what is tied to it) down to this (0: the stack's)")
	every := flag.Duration("summary", 5*time.Second, "how often to print the summary")
	logFile := flag.String("logs", ".dev/pipeline.log", "where every component's JSON logs go")
	flag.Parse()
	return options{creators: strings.Split(*creators, ","), window: *window, every: *every, logFile: *logFile}
}

func run() error {
	o := parseFlags()
	if err := os.MkdirAll(".dev", 0o755); err != nil {
		return err
	}
	logs, err := os.Create(o.logFile)
	if err != nil {
		return err
	}
	defer logs.Close()
	latency := devstack.NewLatencyWatch(logs)
	site := fakesite.New()
	defer site.Close()
	sessions := map[string]string{}
	for _, c := range o.creators {
		sessions[c] = site.AddCreator(c)
	}
	s, err := devstack.Start(devstack.Options{SiteURL: site.URL, Sessions: sessions, Window: o.window, Logs: latency})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("\nstopping…")
		if err := s.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stop:", err)
		}
		_ = os.Remove(".dev/env")
		fmt.Println("stopped")
	}()
	if err := writeReplayEnv(s); err != nil {
		return err
	}
	printHowTo(s, o, site.URL)
	summarizeUntilStopped(s, o, latency, site)
	return nil
}

// writeReplayEnv writes the replay function's environment here, for
// `make replay`.
func writeReplayEnv(s *devstack.Stack) error {
	replayEnv, err := s.ReplayEnv()
	if err != nil {
		return err
	}
	env := ""
	for k, v := range replayEnv {
		env += k + "=" + v + "\n"
	}
	return os.WriteFile(".dev/env", []byte(env), 0o600)
}

func printHowTo(s *devstack.Stack, o options, siteURL string) {
	limit, first := s.Wiring.Limiter.Limit, o.creators[0]
	fmt.Printf(`
The pipeline runs (limit %d per %s per creator). Send a message:

  curl -s -X POST %s/api/onlyfans/messages/send \
    -H 'Content-Type: application/json' \
    -H 'Authorization: Bearer %s' \
    -d '{"creatorId":"%s","recipientId":"fan-1","content":"hello from make dev"}'

Status:   curl -s %s/api/onlyfans/messages/status -H 'Authorization: Bearer %s'
Replay:   make replay      Logs: %s      Fake site: %s/my/chats/chat/fan-1
Ctrl-C stops everything.

`, limit.Count, limit.Window, s.APIURL, devstack.Token("user-"+first, false, first), first, s.APIURL, devstack.Token("ops-"+first, true), o.logFile, siteURL)
}

// summarizeUntilStopped prints the summary every o.every until Ctrl-C or
// SIGTERM.
func summarizeUntilStopped(s *devstack.Stack, o options, latency *devstack.LatencyWatch, site *fakesite.Site) {
	limit := s.Wiring.Limiter.Limit
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	tick := time.NewTicker(o.every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			fmt.Printf("[%s] %s%s%s", time.Now().Format("15:04:05"), s.Summary(), latency.Summary(), site.Summary(o.creators, limit.Count, limit.Window))
		}
	}
}
