package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/huntaze/message-pipeline/test/harness"
)

type binaryFigures struct {
	name     string
	sizeMB   float64
	initTime time.Duration
	// The same Lambda built from lambdaBaseline, in the same run.
	baseSizeMB   float64
	baseInitTime time.Duration
}

// lambdaBaseline is the commit before issue 27's size work: its Lambdas
// linked go-playground/validator, config.LoadDefaultConfig and the SSM and
// Secrets Manager clients.
const lambdaBaseline = "9c8bf78"

// Lambdas with the environment each needs to reach lambda.Start.
var lambdas = []struct {
	pkg string
	env []string
}{
	{"functions/api", nil},
	{"functions/ratelimiter", []string{"INTAKE_QUEUE_URL=q", "INTAKE_DLQ_URL=q", "WORKFLOWS_QUEUE_URL=q", "REDIS_ADDR=127.0.0.1:1", "REDIS_TLS=false"}},
	{"functions/replay", []string{"INTAKE_QUEUE_URL=q", "INTAKE_DLQ_URL=q", "WORKFLOWS_QUEUE_URL=q", "WORKFLOWS_DLQ_URL=q", "FALLBACK_TABLE=t"}},
	{"functions/rotation", []string{"ROTATION_KIND=session-health", "SESSION_SECRET_PREFIX=huntaze/dev/onlyfans-session/"}},
}

// measureLambdas builds each Lambda as deployed (linux/arm64, stripped) for
// its size, and for this machine to time init: process start until it asks
// a fake Lambda runtime API (127.0.0.1) for its first event. Median of 5.
// The baseline is the same package of lambdaBaseline (git archive), built
// and timed the same way.
func measureLambdas(t harness.T) []binaryFigures {
	root := harness.RepoRoot(t)
	dir, _ := os.MkdirTemp("", "lambdas-")
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "baseline")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatalf("%v", err)
	}
	archive := exec.Command("sh", "-c", "git archive "+lambdaBaseline+" | tar -x -C "+base)
	archive.Dir = root
	if b, err := archive.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", lambdaBaseline, err, b)
	}
	var out []binaryFigures
	for _, l := range lambdas {
		name := filepath.Base(l.pkg)
		f := binaryFigures{name: name}
		f.sizeMB, f.initTime = measureLambda(t, root, filepath.Join(dir, name), l.pkg, l.env)
		f.baseSizeMB, f.baseInitTime = measureLambda(t, base, filepath.Join(dir, name+"-baseline"), l.pkg, l.env)
		out = append(out, f)
	}
	return out
}

func measureLambda(t harness.T, root, bin, pkg string, env []string) (float64, time.Duration) {
	build := func(dst, arch string) {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags=lambda.norpc", "-o", dst, "./"+pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s in %s: %v\n%s", pkg, root, err, b)
		}
	}
	build(bin+"-arm64", "arm64")
	build(bin, "amd64")
	st, err := os.Stat(bin + "-arm64")
	if err != nil {
		t.Fatalf("%v", err)
	}
	var runs []time.Duration
	for range 5 {
		runs = append(runs, timeInit(t, filepath.Base(bin), bin, env))
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
	return float64(st.Size()) / 1e6, runs[len(runs)/2]
}

// timeInit starts bin once and returns how long it took to ask for its
// first event.
func timeInit(t harness.T, name, bin string, env []string) time.Duration {
	ready := make(chan time.Time, 1)
	rt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case ready <- time.Now():
		default:
		}
		<-r.Context().Done()
	}))
	defer rt.Close()
	defer rt.CloseClientConnections()
	env = append([]string{"AWS_LAMBDA_RUNTIME_API=" + rt.Listener.Addr().String(), "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}, env...)
	start := time.Now()
	p := harness.StartCommand(t, name, env, bin)
	defer p.Stop()
	select {
	case at := <-ready:
		return at.Sub(start)
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never asked for an event:\n%s", name, p.Output())
	}
	return 0
}

func mb(v float64) string { return fmt.Sprintf("%.1f MB", v) }
