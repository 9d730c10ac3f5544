// Package harness starts the real services the tests talk to — redis-server,
// fauxqs (SQS + S3), dynalite (DynamoDB) and Chromium through playwright-go —
// each on a free 127.0.0.1 port, and stops them when the test ends.
//
// A missing binary fails the test with the command that installs it; nothing
// is skipped silently.
package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// StartTimeout bounds how long any service may take to come up.
const StartTimeout = 20 * time.Second

// Install commands quoted in failure messages.
const (
	InstallApt = "apt-get update && apt-get install -y redis-server chromium   (or: make deps)"
	InstallNpm = "npm ci   (or: make deps)"
)

// RepoRoot returns the directory holding go.mod, found by walking up from the
// test's working directory (its package folder).
func RepoRoot(t T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("harness: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("harness: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Node returns the pinned Node 22 binary installed by npm (package.json pins
// node@22); fauxqs 2.x needs Node >= 22.5, which Debian does not ship.
func Node(t T) string {
	t.Helper()
	node := filepath.Join(RepoRoot(t), "node_modules", ".bin", "node")
	if _, err := os.Stat(node); err != nil {
		t.Fatalf("harness: node 22 not found at %s; install the npm packages with: %s", node, InstallNpm)
	}
	return node
}

// LookBinary finds a binary on PATH or at one of the fallback paths, failing
// the test with how to install it.
func LookBinary(t T, name, install string, fallbacks ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range fallbacks {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("harness: %s not found on PATH; install it with: %s", name, install)
	return ""
}

// Process is a child process whose output is kept for failure reports.
type Process struct {
	Name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *Buffer
	done  chan struct{}
	err   error
}

// Buffer is a bytes.Buffer safe for concurrent writers (process output,
// logs of concurrent handlers in tests).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Bytes returns a copy of the contents.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

// start runs a process in its own process group that the kernel kills if the
// test binary dies (Pdeathsig), and that t.Cleanup stops.
func start(t T, name string, stdout io.Writer, argv ...string) *Process {
	t.Helper()
	return startEnv(t, name, stdout, nil, argv...)
}

// StartCommand runs a program of ours (e.g. a built service binary) with
// extra environment, in its own process group, stopped after the test.
func StartCommand(t T, name string, env []string, argv ...string) *Process {
	t.Helper()
	return startEnv(t, name, nil, env, argv...)
}

// Signal sends sig to the process group (the program and its children).
func (p *Process) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// SignalMain sends sig to the program only, as an init process forwarding
// an ECS stop does (its children, e.g. a browser, do not get it).
func (p *Process) SignalMain(sig syscall.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Wait waits for the process to exit and returns its exit code (-1 if it
// was killed by a signal), failing the test after timeout.
func (p *Process) Wait(t T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("harness: %s still running after %s\n%s", p.Name, timeout, p.Output())
	}
	return p.cmd.ProcessState.ExitCode()
}

func startEnv(t T, name string, stdout io.Writer, env []string, argv ...string) *Process {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{Name: name, cmd: cmd, out: &Buffer{}, done: make(chan struct{})}
	if stdout == nil {
		cmd.Stdout = p.out
	} else {
		cmd.Stdout = io.MultiWriter(stdout, p.out)
	}
	cmd.Stderr = p.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("harness: %s stdin: %v", name, err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("harness: start %s (%v): %v", name, argv, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("harness: %s output:\n%s", name, p.Output())
		}
	})
	return p
}

// Output returns everything the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Stop closes stdin, sends SIGTERM to the process group and SIGKILL if it is
// still there after two seconds. It is safe to call more than once.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.stdin.Close()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startLauncher runs a Node launcher script that prints {"url": ...} once it
// listens, and returns the process with that URL.
func startLauncher(t T, name, script string) (*Process, string) {
	t.Helper()
	node := Node(t)
	path := filepath.Join(RepoRoot(t), "test", "harness", script)
	pr, pw := io.Pipe()
	p := start(t, name, pw, node, path)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() { _ = pw.Close() })
	deadline := time.After(StartTimeout)
	for {
		select {
		case line := <-lines:
			var ready struct{ URL string }
			if json.Unmarshal([]byte(line), &ready) == nil && ready.URL != "" {
				return p, ready.URL
			}
		case <-p.done:
			t.Fatalf("harness: %s exited before listening (%v); if its npm package is missing run: %s\n%s", name, p.err, InstallNpm, p.Output())
		case <-deadline:
			t.Fatalf("harness: %s did not listen within %s\n%s", name, StartTimeout, p.Output())
		}
	}
}

// FreePort asks the kernel for a free 127.0.0.1 TCP port. Services that can
// listen on port 0 themselves are preferred; this is for those that cannot.
func FreePort(t T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitTCP waits until addr accepts connections or the process exits.
func waitTCP(p *Process, addr string) error {
	deadline := time.Now().Add(StartTimeout)
	for time.Now().Before(deadline) {
		if p.Exited() {
			return fmt.Errorf("%s exited: %v", p.Name, p.err)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening on %s after %s", p.Name, addr, StartTimeout)
}

// T is what the harness needs from a test: *testing.T and *testing.B have
// it, and so does the local pipeline runner (make dev), which is not a test.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Cleanup(func())
	Failed() bool
}
