package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
	"github.com/huntaze/message-pipeline/test/harness"
)

// taskFigures are one scraper process's throughput at the Fargate task's
// size: the real binary pinned to one CPU (the task has 1 vCPU) with its
// driver and Chromium, everything else (queues, Redis, the site) on the
// other CPU.
type taskFigures struct {
	creators, messages, maxGroups int
	sendsPerMinute                float64
	pssMiB                        float64
	resultPuts                    int
	elapsed                       time.Duration
	cpuByProgram                  map[string]time.Duration
}

// treeCPU sums the CPU time of a process tree by program name: each
// process's own time and that of its reaped children (renderers that
// exited).
func treeCPU(root int) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range processTree(root) {
		var ticks int64
		for _, k := range []int{11, 12, 13, 14} { // utime, stime, cutime, cstime
			v, _ := strconv.ParseInt(p.stat[k], 10, 64)
			ticks += v
		}
		out[p.name] += time.Duration(ticks) * 10 * time.Millisecond // USER_HZ = 100
	}
	return out
}

// measureTask drains creators × perCreator messages (distinct fans, the
// send gate open: it is measured elsewhere) through the real scraper binary
// and samples the PSS of its process tree.
func measureTask(t harness.T, creators, perCreator int, env ...string) taskFigures {
	return measureTaskOn(t, fakesite.VariantA, creators, perCreator, env...)
}

// measureTaskOn is measureTask against variant v of the fake site: the
// single-page app (fakesite.VariantSPA) with the profile that switches
// chats inside it (the built-in onlyfans-spa), else a document per chat
// with the default profile.
func measureTaskOn(t harness.T, v fakesite.Variant, creators, perCreator int, env ...string) taskFigures {
	root := harness.RepoRoot(t)
	bin := buildScraper(t, root)
	site := fakesite.NewVariant(v)
	t.Cleanup(site.Close)
	if v.Name == fakesite.VariantSPA.Name {
		env = append([]string{"SITE_PROFILE=" + profiles.SPA}, env...)
	}
	f := harness.StartFauxqs(t)
	r := harness.StartRedis(t)
	// The gate's fence and the ledger's epoch (0: this Redis served it all
	// along), or every click waits CHAT_FAULT_PATIENCE for records a lost Redis might have held.
	bench := scrapersettings.Settings{Environment: "bench"}
	harness.PrimeFence(t, r.Client(), bench.Gate().FenceKey())
	primeLedger(t, r.Client(), bench.LedgerPrefix())
	sys := f.CreateQueues(t, "bench")
	ddb := harness.StartDynalite(t)
	ddb.CreateTable(t, "attempts", scraper.AttemptsKeyAttribute)
	ctx := context.Background()
	if _, err := f.S3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("results")}); err != nil {
		t.Fatalf("%v", err)
	}
	credsFile := writeCredentials(t, site, creators)
	queueAll(t, f, sys.Workflows.URL, creators, perCreator)
	total := creators * perCreator
	base := []string{
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + f.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddb.Endpoint, "ATTEMPTS_TABLE=attempts",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"ENVIRONMENT=bench", "WORKFLOWS_QUEUE_URL=" + sys.Workflows.URL, "WORKFLOWS_DLQ_URL=" + sys.Workflows.DLQURL,
		"RESULTS_BUCKET=results", "REDIS_ADDR=" + r.Addr, "REDIS_TLS=false", "CREDENTIALS_FILE=" + credsFile,
		"ONLYFANS_BASE_URL=" + site.URL, "PLAYWRIGHT_DRIVER_PATH=" + harness.DriverDir(t),
		"POLL_WAIT=1s", "RATE_LIMIT=1000000", "RATE_WINDOW=1s", "RATE_MARGIN=0s", "LOG_LEVEL=warn",
	}
	figs := taskFigures{creators: creators, messages: total, maxGroups: maxGroupsIn(env)}
	// Pinned to CPU 0, children included (affinity is inherited).
	proc := harness.StartCommand(t, "scraper", append(base, env...), "taskset", "-c", "0", bin)
	start := time.Now()
	for len(site.Sent()) < total && time.Since(start) < 10*time.Minute && !proc.Exited() {
		time.Sleep(200 * time.Millisecond)
		figs.pssMiB = max(figs.pssMiB, treePSS(proc.Pid()))
	}
	figs.elapsed = time.Since(start)
	if n := len(site.Sent()); n < total {
		t.Fatalf("scraper sent %d of %d in %s:\n%s", n, total, figs.elapsed, tail(proc.Output(), 4000))
	}
	figs.sendsPerMinute = float64(total) / figs.elapsed.Minutes()
	figs.cpuByProgram = treeCPU(proc.Pid())
	_ = proc.SignalMain(15)
	_, _ = proc.Process.Wait(30 * time.Second)
	objs, err := f.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("results"), Prefix: aws.String("results/")})
	if err == nil {
		figs.resultPuts = int(aws.ToInt32(objs.KeyCount))
	}
	if d := site.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicates: %v", d)
	}
	return figs
}

// primeLedger declares the bench's Redis one that served the scraper's
// ledger all along (Ledger.PrimeEpoch).
func primeLedger(t harness.T, c *redis.Client, prefix string) {
	t.Helper()
	if err := scraper.NewLedger(c, prefix, 0).PrimeEpoch(context.Background()); err != nil {
		t.Fatalf("prime the ledger: %v", err)
	}
}

// maxGroupsIn is the MAX_GROUPS setting among env (0 when unset).
func maxGroupsIn(env []string) int {
	n := 0
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "MAX_GROUPS="); ok {
			_, _ = fmt.Sscan(v, &n)
		}
	}
	return n
}

// cpuPerSend is the process tree's CPU time per message sent.
func (f taskFigures) cpuPerSend() time.Duration {
	var total time.Duration
	for _, d := range f.cpuByProgram {
		total += d
	}
	return total / time.Duration(max(f.messages, 1))
}

// cpuPerSendText is cpuPerSend with its parts: Chromium's renderers, the
// rest of Chromium, the Playwright driver (node), the scraper itself.
func (f taskFigures) cpuPerSendText() string {
	parts := map[string]time.Duration{}
	for prog, d := range f.cpuByProgram {
		switch {
		case prog == "chromium renderer":
			parts["renderers"] += d
		case strings.HasPrefix(prog, "chromium"):
			parts["browser"] += d
		case prog == "node":
			parts["driver"] += d
		default:
			parts["scraper"] += d
		}
	}
	per := func(k string) int64 { return (parts[k] / time.Duration(max(f.messages, 1))).Milliseconds() }
	return fmt.Sprintf("%d ms (renderers %d, browser %d, driver %d, scraper %d)", f.cpuPerSend().Milliseconds(), per("renderers"), per("browser"), per("driver"), per("scraper"))
}

// cpuByProgramText is the CPU per send of each program of the tree.
func (f taskFigures) cpuByProgramText() string {
	progs := make([]string, 0, len(f.cpuByProgram))
	for p := range f.cpuByProgram {
		progs = append(progs, p)
	}
	sort.Slice(progs, func(i, j int) bool { return f.cpuByProgram[progs[i]] > f.cpuByProgram[progs[j]] })
	parts := make([]string, 0, len(progs))
	for _, p := range progs {
		parts = append(parts, fmt.Sprintf("%s %.1f", p, float64(f.cpuByProgram[p].Microseconds())/1000/float64(max(f.messages, 1))))
	}
	return strings.Join(parts, ", ") + " ms"
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// buildScraper builds the scraper binary and returns its path.
func buildScraper(t harness.T, root string) string {
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("bench-scraper-%d", os.Getpid()))
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./scraper/cmd/scraper")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build scraper: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = os.Remove(bin) })
	return bin
}

// writeCredentials writes every creator's session (from site) to a file
// and returns its path.
func writeCredentials(t harness.T, site *fakesite.Site, creators int) string {
	creds := map[string]map[string]string{}
	for c := range creators {
		name := fmt.Sprint("creator-", c)
		creds[name] = map[string]string{"sessionCookie": site.AddCreator(name)}
	}
	credsJSON, _ := json.Marshal(creds)
	credsFile := filepath.Join(os.TempDir(), fmt.Sprintf("bench-creds-%d.json", os.Getpid()))
	if err := os.WriteFile(credsFile, credsJSON, 0o600); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = os.Remove(credsFile) })
	return credsFile
}

// queueAll queues every message first, in batches, so the run measures the
// scraper.
func queueAll(t harness.T, f *harness.Fauxqs, queueURL string, creators, perCreator int) {
	ctx := context.Background()
	for i := range perCreator {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for c := range creators {
			name := fmt.Sprint("creator-", c)
			m, _ := message.New("u", fmt.Sprint("fan-", i), fmt.Sprintf("hello %d from %s", i, name), time.Now())
			m.CreatorID = name
			body, _ := m.Marshal()
			dedup, _ := m.DeduplicationID()
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("e", len(entries))), MessageBody: aws.String(string(body)),
				MessageAttributes: m.Attributes().SQS(), MessageGroupId: aws.String(name), MessageDeduplicationId: aws.String(dedup)})
			if len(entries) == 10 || c == creators-1 {
				out, err := f.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
				if err != nil || len(out.Failed) > 0 {
					t.Fatalf("queueing: %v %v", err, out)
				}
				entries = nil
			}
		}
	}
}
