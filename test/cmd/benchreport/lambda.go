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
}

// Lambdas with the environment each needs to reach lambda.Start.
var lambdas = []struct {
	pkg string
	env []string
}{
	{"functions/api", nil},
	{"functions/ratelimiter", []string{"INTAKE_QUEUE_URL=q", "INTAKE_DLQ_URL=q", "WORKFLOWS_QUEUE_URL=q", "REDIS_ADDR=127.0.0.1:1", "REDIS_TLS=false"}},
	{"functions/rotation", []string{"ROTATION_KIND=session-health", "SESSION_SECRET_PREFIX=huntaze/dev/onlyfans-session/"}},
}

// measureLambdas builds each Lambda as deployed (linux/arm64, stripped) for
// its size, and for this machine to time init: process start until it asks
// a fake Lambda runtime API (127.0.0.1) for its first event. Median of 5.
func measureLambdas(t harness.T) []binaryFigures {
	root := harness.RepoRoot(t)
	dir, _ := os.MkdirTemp("", "lambdas-")
	defer os.RemoveAll(dir)
	var out []binaryFigures
	for _, l := range lambdas {
		name := filepath.Base(l.pkg)
		arm := filepath.Join(dir, name+"-arm64")
		build := func(dst, arch string) {
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags=lambda.norpc", "-o", dst, "./"+l.pkg)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build %s: %v\n%s", l.pkg, err, b)
			}
		}
		build(arm, "arm64")
		native := filepath.Join(dir, name)
		build(native, "amd64")
		st, _ := os.Stat(arm)
		var runs []time.Duration
		for range 5 {
			ready := make(chan time.Time, 1)
			rt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case ready <- time.Now():
				default:
				}
				<-r.Context().Done()
			}))
			env := append([]string{"AWS_LAMBDA_RUNTIME_API=" + rt.Listener.Addr().String(), "AWS_REGION=us-east-1",
				"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_EC2_METADATA_DISABLED=true",
				"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}, l.env...)
			start := time.Now()
			p := harness.StartCommand(t, name, env, native)
			select {
			case at := <-ready:
				runs = append(runs, at.Sub(start))
			case <-time.After(10 * time.Second):
				t.Fatalf("%s never asked for an event:\n%s", name, p.Output())
			}
			p.Stop()
			rt.CloseClientConnections()
			rt.Close()
		}
		sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
		out = append(out, binaryFigures{name: name, sizeMB: float64(st.Size()) / 1e6, initTime: runs[len(runs)/2]})
	}
	return out
}

func mb(v float64) string { return fmt.Sprintf("%.1f MB", v) }
