package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/browser"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper/onlyfans"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
	scrapersetup "github.com/huntaze/message-pipeline/scraper/setup"
	"github.com/huntaze/message-pipeline/test/harness"
)

// treePSS sums the proportional set size of a process and its descendants.
func treePSS(root int) float64 {
	total := 0.0
	for _, p := range processTree(root) {
		total += pss(p.pid)
	}
	return total / 1024
}

// process is one entry of /proc: its program name (with Chromium's
// --type, e.g. "chromium renderer") and the fields of its stat after the
// name (state, ppid, …; utime is fields[11]).
type process struct {
	pid  int
	name string
	stat []string
}

// processTree lists root and its descendants from one read of /proc.
func processTree(root int) []process {
	children := map[int][]int{}
	all := map[int]process{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		p := process{pid: pid, name: string(b[i+1 : j]), stat: strings.Fields(string(b[j+1:]))}
		if len(p.stat) < 15 {
			continue
		}
		if cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil {
			for _, a := range strings.FieldsFunc(string(cl), func(r rune) bool { return r == 0 || r == ' ' }) {
				if t, ok := strings.CutPrefix(a, "--type="); ok {
					p.name += " " + t
				}
			}
		}
		ppid, _ := strconv.Atoi(p.stat[1])
		children[ppid] = append(children[ppid], pid)
		all[pid] = p
	}
	var out []process
	var walk func(int)
	walk = func(pid int) {
		if p, ok := all[pid]; ok {
			out = append(out, p)
		}
		for _, c := range children[pid] {
			walk(c)
		}
	}
	walk(root)
	return out
}

func pss(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb
		}
	}
	return 0
}

// jitterFigures are the delays between the send gate's decision (right
// before the click) and the moment the site records the send.
type jitterFigures struct {
	min, p50, p99, max time.Duration
	n                  int
}

// measureClickToSite sends n messages one after the other with real
// Chromium and measures, per send, the time from the beforeClick callback
// (where the gate decides) to the site's record. The gate's margin must
// exceed the spread (max − min): two sends admitted one window apart can
// reach the site that much closer together.
func measureClickToSite(t harness.T, n int) jitterFigures {
	site := fakesite.Start(t)
	creds := onlyfans.Credentials{SessionCookie: site.AddCreator("creator-j")}
	cfg, err := scrapersetup.Sender(scrapersettings.Defaults())
	if err != nil {
		t.Fatalf("%v", err)
	}
	cfg.BaseURL, cfg.Browser, cfg.RecycleAfter, cfg.Traces = site.URL, browser.Options{DriverDir: harness.DriverDir(t)}, 50, false
	cfg.Timeouts = onlyfans.Timeouts{Navigation: 10 * time.Second, Action: 5 * time.Second, Response: 5 * time.Second}
	sender, err := onlyfans.New(cfg)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = sender.Close() })
	decided := map[string]time.Time{}
	for i := range n {
		m, _ := message.New("u", "fan-1", fmt.Sprint("jitter ", i), time.Now())
		if _, _, err := sender.Send(context.Background(), "creator-j", creds, m, func(onlyfans.Mark) error { decided[m.Content] = time.Now(); return nil }); err != nil {
			t.Fatalf("jitter send: %v", err)
		}
	}
	var ds []time.Duration
	for _, s := range site.Sent() {
		ds = append(ds, s.At.Sub(decided[s.Text]))
	}
	slices.Sort(ds)
	if len(ds) == 0 {
		t.Fatalf("no sends recorded")
	}
	return jitterFigures{min: ds[0], p50: ds[len(ds)/2], p99: ds[len(ds)*99/100], max: ds[len(ds)-1], n: len(ds)}
}
