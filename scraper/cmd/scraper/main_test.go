package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/scraper"
	"github.com/huntaze/message-pipeline/scraper/settings"
	"github.com/huntaze/message-pipeline/scraper/setup"
	"github.com/huntaze/message-pipeline/test/harness"
	"github.com/huntaze/message-pipeline/test/wait"
)

func TestLoadSettingsNamesWhatIsMissing(t *testing.T) {
	_, err := setup.Load(map[string]string{"SHUTDOWN_DEADLINE": "150s", "SITE_PROFILE_FILE": "/no/such/profile.json"})
	for _, want := range []string{"WORKFLOWS_QUEUE_URL", "RESULTS_BUCKET", "ATTEMPTS_TABLE", "SESSION_SECRET_PREFIX", "REDIS_ADDR", "120s ECS stopTimeout", "SITE_PROFILE_FILE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

// process runs the real scraper binary against the emulators.
type process struct {
	t      *testing.T
	bin    string
	env    []string
	site   *fakesite.Site
	aws    *harness.Fauxqs
	queues emulator.System
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "scraper")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func newProcess(t *testing.T, extra ...string) *process {
	t.Helper()
	return newProcessOn(t, fakesite.VariantA, extra...)
}

func newProcessOn(t *testing.T, v fakesite.Variant, extra ...string) *process {
	t.Helper()
	p := &process{t: t, bin: buildBinary(t), site: fakesite.StartVariant(t, v), aws: harness.StartFauxqs(t)}
	r := harness.StartRedis(t)
	// The gate's Redis has served it before: no one-window fence at start;
	// and the ledger's (epoch 0): no message was accepted before it, so
	// no click waits for records a lost Redis might have held.
	testEnv := settings.Settings{Environment: "test"}
	harness.PrimeFence(t, r.Client(), testEnv.Gate().FenceKey())
	if err := scraper.NewLedger(r.Client(), testEnv.LedgerPrefix(), 0).PrimeEpoch(context.Background()); err != nil {
		t.Fatalf("prime the ledger: %v", err)
	}
	p.queues = p.aws.CreateQueues(t, "test")
	ddb := harness.StartDynalite(t)
	ddb.CreateTable(t, "attempts", scraper.AttemptsKeyAttribute)
	if _, err := p.aws.S3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("results")}); err != nil {
		t.Fatal(err)
	}
	creds, _ := json.Marshal(map[string]any{
		"creator-a": map[string]string{"sessionCookie": p.site.AddCreator("creator-a")},
		"creator-b": map[string]string{"sessionCookie": p.site.AddCreator("creator-b")},
	})
	credsFile := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = append([]string{
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=" + p.aws.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddb.Endpoint, "ATTEMPTS_TABLE=attempts",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"ENVIRONMENT=test", "WORKFLOWS_QUEUE_URL=" + p.queues.Workflows.URL, "WORKFLOWS_DLQ_URL=" + p.queues.Workflows.DLQURL,
		"RESULTS_BUCKET=results", "REDIS_ADDR=" + r.Addr, "REDIS_TLS=false", "CREDENTIALS_FILE=" + credsFile,
		"ONLYFANS_BASE_URL=" + p.site.URL, "PLAYWRIGHT_DRIVER_PATH=" + harness.DriverDir(t),
		"POLL_WAIT=1s", "SERVER_BACKOFF=10ms", "BACKOFF_BASE=1s", "RESPONSE_TIMEOUT=10s", "SHUTDOWN_DEADLINE=15s", "ANSWERED_PROOF_PATIENCE=10s",
	}, extra...)
	return p
}

func (p *process) start() *harness.Process {
	return harness.StartCommand(p.t, "scraper", p.env, p.bin)
}

func (p *process) enqueue(creator, text string) message.Message {
	p.t.Helper()
	m, err := message.New("user-"+creator, "fan-1", text, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	m.CreatorID = creator
	body, _ := m.Marshal()
	dedup, _ := m.DeduplicationID()
	if _, err := p.aws.SQS.SendMessage(context.Background(), &sqs.SendMessageInput{
		QueueUrl: aws.String(p.queues.Workflows.URL), MessageBody: aws.String(string(body)), MessageAttributes: m.Attributes().SQS(),
		MessageGroupId: aws.String(creator), MessageDeduplicationId: aws.String(dedup),
	}); err != nil {
		p.t.Fatal(err)
	}
	return m
}

func (p *process) count(url string) int { return harness.QueueDepth(p.aws.SQS, url) }

func TestSIGTERMFinishesInFlightReleasesTheRestAndExitsZero(t *testing.T) {
	// GIVEN a scraper processing one group at a time, two creators queued,
	// and a slow answer to the first send
	p := newProcess(t, "MAX_GROUPS=1")
	p.site.InjectFaults(fakesite.Fault{Delay: 2 * time.Second})
	p.enqueue("creator-a", "a0")
	p.enqueue("creator-b", "b0")
	proc := p.start()
	wait.For(t, 30*time.Second, 50*time.Millisecond, "the first send to start", func() bool { return p.site.SendRequests() >= 1 })

	// WHEN ECS sends SIGTERM mid-batch (through the init, to the scraper only)
	if err := proc.SignalMain(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code := proc.Wait(t, 30*time.Second)

	// THEN the in-flight message was sent and deleted, the other was released
	// unstarted (still queued, visible), nothing went to the DLQ, exit 0
	out := proc.Output()
	if code != 0 || len(p.site.Sent()) != 1 || p.site.SendRequests() != 1 {
		t.Fatalf("exit %d, sent %v\n%s", code, p.site.Sent(), out)
	}
	for _, want := range []string{"stop signal", "message released unprocessed", "browser closed", "scraper stopped cleanly"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if p.count(p.queues.Workflows.URL) != 1 || p.count(p.queues.Workflows.DLQURL) != 0 {
		t.Fatalf("queue %d dlq %d", p.count(p.queues.Workflows.URL), p.count(p.queues.Workflows.DLQURL))
	}
}

func TestSIGKILLBetweenSendAndDeleteThenRestartSendsExactlyOnce(t *testing.T) {
	// GIVEN a queue whose messages come back 3 s after a consumer dies (its
	// heartbeat gives 3 s too), a fan who already has "Thank you babe", and
	// the same text again, which the site records but answers only after 20 s
	p := newProcess(t, "HEARTBEAT_VISIBILITY=3s")
	if _, err := p.aws.SQS.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(p.queues.Workflows.URL), Attributes: map[string]string{"VisibilityTimeout": "3"},
	}); err != nil {
		t.Fatal(err)
	}
	p.site.InjectFaults(fakesite.Fault{}, fakesite.Fault{RecordThenDelay: true, Delay: 20 * time.Second})
	p.enqueue("creator-a", "Thank you babe")
	p.enqueue("creator-a", "Thank you babe")
	first := p.start()
	wait.For(t, 30*time.Second, 50*time.Millisecond, "the site to record both sends", func() bool { return len(p.site.Sent()) == 2 })

	// WHEN the task is killed before it hears back (so before the delete)
	if err := first.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait(t, 10*time.Second)
	// AND a new task starts
	second := p.start()
	wait.For(t, 30*time.Second, 50*time.Millisecond, "the queue to empty", func() bool { return p.count(p.queues.Workflows.URL) == 0 })

	// THEN the fan received each message exactly once: two identical texts
	// from two clicks
	if sent := p.site.Sent(); len(sent) != 2 || p.site.SendRequests() != 2 {
		t.Fatalf("site got %d messages from %d requests\n%s", len(sent), p.site.SendRequests(), second.Output())
	}
	if !strings.Contains(second.Output(), "found in the chat after an interrupted attempt (2 identical texts, 1 before the click)") {
		t.Fatalf("the restarted task did not check the chat:\n%s", second.Output())
	}
	_ = second.SignalMain(syscall.SIGTERM)
	if code := second.Wait(t, 30*time.Second); code != 0 {
		t.Fatalf("second exit %d", code)
	}
}

func TestTheSameBinaryServesTheOtherSiteVariantByItsProfileAlone(t *testing.T) {
	// GIVEN the fake site's second DOM variant and its profile file
	profile, err := filepath.Abs("../../onlyfans/testdata/variant-b.json")
	if err != nil {
		t.Fatal(err)
	}
	p := newProcessOn(t, fakesite.VariantB, "SITE_PROFILE_FILE="+profile)
	p.enqueue("creator-a", "hello from variant b")
	p.enqueue("creator-a", "hello from variant b")
	// WHEN the scraper runs
	proc := p.start()
	wait.For(t, 60*time.Second, 50*time.Millisecond, "the queue to empty", func() bool { return p.count(p.queues.Workflows.URL) == 0 })
	// THEN both identical texts reached the site, once each
	if got := p.site.Texts("creator-a"); len(got) != 2 || p.site.SendRequests() != 2 {
		t.Fatalf("site got %q from %d requests\n%s", got, p.site.SendRequests(), proc.Output())
	}
	_ = proc.SignalMain(syscall.SIGTERM)
	proc.Wait(t, 30*time.Second)
}
