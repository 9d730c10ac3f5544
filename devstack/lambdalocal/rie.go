// Package lambdalocal runs Lambda functions on this machine the way Lambda
// runs them: each function's own main, built for the host, under the AWS
// Lambda Runtime Interface Emulator (aws-lambda-rie, pinned in go.mod as a
// tool), with nothing but the environment its function sets; and the
// three event sources the stack wires to them: the SQS event source
// mapping (Poller), the HTTP API with its JWT authorizer (Front) and the
// EventBridge schedule (Schedule). No Docker, no AWS account: every
// address is on 127.0.0.1.
package lambdalocal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/huntaze/message-pipeline/devstack/emulator"
)

// RIEModule is the emulator's command; its version is go.mod's (a tool).
const RIEModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// invokePath is the emulator's invoke endpoint (Lambda's Invoke API path).
const invokePath = "/2015-03-31/functions/function/invocations"

// BuildRIE builds aws-lambda-rie into dir at the version go.mod pins.
func BuildRIE(root, dir string) (string, error) {
	out := filepath.Join(dir, "aws-lambda-rie")
	if err := goBuild(root, out, RIEModule); err != nil {
		return "", err
	}
	return out, nil
}

// BuildBootstrap builds a function's main package (e.g. functions/api)
// for this host as dir/<base>/<handler>, with the build tag the stack's
// bundler uses for Lambda (infra/gofunction.go: lambda.norpc, the
// provided runtimes' API only), and returns its path.
func BuildBootstrap(root, dir, pkg, handler string) (string, error) {
	out := filepath.Join(dir, filepath.Base(pkg), handler)
	if err := goBuild(root, out, "./"+pkg, "-tags=lambda.norpc"); err != nil {
		return "", err
	}
	return out, nil
}

func goBuild(root, out, pkg string, flags ...string) error {
	args := append(append([]string{"build"}, flags...), "-o", out, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// Spec is one function as the stack defines it.
type Spec struct {
	// Name is the function name (AWS_LAMBDA_FUNCTION_NAME).
	Name string
	// Bootstrap is the built main (the function's handler file).
	Bootstrap string
	Timeout   time.Duration
	MemoryMB  int
	// Env is the environment the stack renders for the function, with the
	// local endpoints and credentials; Lambda's own variables are added.
	Env map[string]string
	// Instances is how many execution environments run at once (one
	// invocation each at a time, as in Lambda).
	Instances int
	// Logs receives the function's JSON lines (its slog and EMF output);
	// the emulator's own lines stay in each instance's output.
	Logs io.Writer
}

// Function is a running function: Instances emulators, each with its own
// runtime API address, invoked one invocation at a time each.
type Function struct {
	spec Spec
	rie  string
	free chan *instance
	mu   sync.Mutex
	all  []*instance
}

type instance struct {
	proc *emulator.Process
	url  string
}

// Start starts the function's instances under the emulator rie. The
// runtime (the function's main) starts at an instance's first invocation,
// as a cold start does.
func Start(rie string, spec Spec) (*Function, error) {
	f := &Function{spec: spec, rie: rie, free: make(chan *instance, max(spec.Instances, 1))}
	for range max(spec.Instances, 1) {
		in, err := f.startInstance()
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		f.free <- in
	}
	return f, nil
}

func (f *Function) startInstance() (*instance, error) {
	var lastErr error
	// Both ports are chosen here (the emulator cannot report one it
	// picked): a rare race with another process is retried.
	for range 3 {
		apiPort, err := emulator.FreePort()
		if err != nil {
			return nil, err
		}
		riePort, err := emulator.FreePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(riePort)
		p, err := emulator.StartIsolated(f.spec.Name, JSONLines(f.spec.Logs), f.environ(),
			f.rie, "--log-level", "warn", "--runtime-interface-emulator-address", addr,
			"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(apiPort), f.spec.Bootstrap)
		if err != nil {
			return nil, err
		}
		if lastErr = emulator.WaitTCP(p, addr); lastErr == nil {
			in := &instance{proc: p, url: "http://" + addr + invokePath}
			f.mu.Lock()
			f.all = append(f.all, in)
			f.mu.Unlock()
			return in, nil
		}
		lastErr = fmt.Errorf("%w\n%s", lastErr, p.Output())
		_ = p.Close()
	}
	return nil, fmt.Errorf("%s: %w", f.spec.Name, lastErr)
}

// environ is the whole environment of an instance: the function's, and
// what Lambda sets for every function.
func (f *Function) environ() []string {
	env := map[string]string{
		"PATH": "/usr/local/bin:/usr/bin:/bin", "TZ": ":UTC", "LANG": "en_US.UTF-8",
		"AWS_LAMBDA_FUNCTION_NAME": f.spec.Name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.spec.MemoryMB),
		// The emulator's name for the function's timeout (whole seconds).
		"AWS_LAMBDA_FUNCTION_TIMEOUT": strconv.Itoa(max(int(f.spec.Timeout/time.Second), 1)),
		"AWS_LAMBDA_LOG_GROUP_NAME":   "/aws/lambda/" + f.spec.Name, "AWS_LAMBDA_LOG_STREAM_NAME": "local",
		"_HANDLER": filepath.Base(f.spec.Bootstrap), "LAMBDA_TASK_ROOT": filepath.Dir(f.spec.Bootstrap),
	}
	for k, v := range f.spec.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// FunctionError is an error the function's handler returned (Lambda's
// "Unhandled" function error), or its timeout.
type FunctionError struct {
	Function, Type, Message string
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("%s: function error %s: %s", e.Function, e.Type, e.Message)
}

// Invoke runs one invocation with payload on a free instance (waiting for
// one, as a function at its concurrency limit) and returns the handler's
// response. A handler error is a *FunctionError; a timeout is one too, and
// that instance is replaced by a fresh one (a new execution environment).
func (f *Function) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var in *instance
	select {
	case in = <-f.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out, err := f.invokeOn(ctx, in, payload)
	var fe *FunctionError
	if errors.As(err, &fe) && fe.Type == "Timeout" || in.proc.Exited() {
		_ = in.proc.Close()
		if fresh, serr := f.startInstance(); serr == nil {
			in = fresh
		} else {
			err = errors.Join(err, serr)
		}
	}
	f.free <- in
	return out, err
}

func (f *Function) invokeOn(ctx context.Context, in *instance, payload []byte) ([]byte, error) {
	// Not cancelled with ctx: Lambda finishes an invocation it started.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.spec.Timeout+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ictx, http.MethodPost, in.url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: invoke: %w", f.spec.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: invoke: %w", f.spec.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &FunctionError{Function: f.spec.Name, Type: "Runtime." + strconv.Itoa(resp.StatusCode), Message: string(body)}
	}
	if bytes.HasPrefix(body, []byte("Task timed out after")) {
		return nil, &FunctionError{Function: f.spec.Name, Type: "Timeout", Message: string(body)}
	}
	// The emulator answers a handler's error with 200 and Lambda's error
	// document (in AWS the X-Amz-Function-Error header marks it).
	var fe struct {
		Message *string `json:"errorMessage"`
		Type    *string `json:"errorType"`
	}
	if json.Unmarshal(body, &fe) == nil && fe.Message != nil && fe.Type != nil {
		return nil, &FunctionError{Function: f.spec.Name, Type: *fe.Type, Message: *fe.Message}
	}
	return body, nil
}

// Restart replaces every instance by a fresh one once its invocation in
// flight has finished, as a deployment or a cold start does.
func (f *Function) Restart() error {
	n := cap(f.free)
	var errs []error
	for range n {
		in := <-f.free
		_ = in.proc.Close()
		fresh, err := f.startInstance()
		if err != nil {
			errs = append(errs, err)
			fresh = in // keeps the pool whole; its invocations fail
		}
		f.free <- fresh
	}
	return errors.Join(errs...)
}

// Output is what every instance's emulator and runtime wrote (reports).
func (f *Function) Output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, in := range f.all {
		b.WriteString(in.proc.Output())
	}
	return b.String()
}

// Close stops every instance.
func (f *Function) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.all {
		_ = in.proc.Close()
	}
	f.all = nil
	return nil
}

// JSONLines passes on to w the lines written to it that are JSON objects
// (a function's slog and EMF lines), not the emulator's START/END/REPORT
// lines. A nil w drops everything.
func JSONLines(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return &jsonLines{w: w}
}

type jsonLines struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
}

func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.partial = append(j.partial, p...)
	for {
		i := bytes.IndexByte(j.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := j.partial[:i+1]; line[0] == '{' {
			_, _ = j.w.Write(line)
		}
		j.partial = j.partial[i+1:]
	}
}
