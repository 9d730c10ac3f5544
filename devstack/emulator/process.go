// Package devstack runs the pipeline on one machine, with no AWS account and
// no Docker: redis-server, fauxqs (SQS + S3) and dynalite (DynamoDB) on free
// 127.0.0.1 ports, each component built by the same setup its main uses
// (only the endpoints are local), the rate limiter fed by a poller that
// behaves like Lambda's SQS event source, and the real scraper binary.
// `make dev` (cmd/dev) and the end-to-end tests both use it; test/harness
// adapts it to testing.T.
//
// Every start returns an error instead of exiting, and everything started
// has Close. A missing binary is an error that names the install command.
package emulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
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

// Install commands quoted in errors.
const (
	InstallApt = "apt-get update && apt-get install -y redis-server chromium   (or: make deps)"
	InstallNpm = "npm ci   (or: make deps)"
)

// RepoRoot returns the directory holding go.mod, found by walking up from
// the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Node returns the pinned Node 22 binary installed by npm (package.json pins
// node@22); fauxqs 2.x needs Node >= 22.5, which Debian does not ship.
func Node(root string) (string, error) {
	node := filepath.Join(root, "node_modules", ".bin", "node")
	if _, err := os.Stat(node); err != nil {
		return "", fmt.Errorf("node 22 not found at %s; install the npm packages with: %s", node, InstallNpm)
	}
	return node, nil
}

// LookBinary finds a binary on PATH or at one of the fallback paths.
func LookBinary(name, install string, fallbacks ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, p := range fallbacks {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH; install it with: %s", name, install)
}

// Buffer is a bytes.Buffer safe for concurrent writers (process output,
// logs of concurrent handlers).
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

// Process is a supervised child process whose output is kept for reports.
type Process struct {
	Name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *Buffer
	done  chan struct{}
	err   error
}

// StartProcess runs argv in its own process group, which the kernel kills if this
// process dies (Pdeathsig). env (KEY=VALUE) is added to ours; stdout, when
// not nil, also gets the output.
func StartProcess(name string, stdout io.Writer, env []string, argv ...string) (*Process, error) {
	if env != nil {
		env = append(os.Environ(), env...)
	}
	return start(name, stdout, env, argv)
}

// StartIsolated is StartProcess with env as the whole environment: none of
// ours is inherited (a Lambda sees only the variables its function sets).
func StartIsolated(name string, stdout io.Writer, env []string, argv ...string) (*Process, error) {
	return start(name, stdout, append([]string{}, env...), argv)
}

func start(name string, stdout io.Writer, env []string, argv []string) (*Process, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{Name: name, cmd: cmd, out: &Buffer{}, done: make(chan struct{})}
	cmd.Stdout = p.out
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(stdout, p.out)
	}
	cmd.Stderr = p.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("%s stdin: %w", name, err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%v): %w", name, argv, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
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

// Wait waits for the process to exit and returns its exit code (-1 if a
// signal killed it), or an error after timeout.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s still running after %s", p.Name, timeout)
	}
}

// Output returns everything the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Close stops the process: stdin closed, SIGTERM to the group, SIGKILL if
// it is still there after two seconds. It is safe to call more than once.
func (p *Process) Close() error {
	select {
	case <-p.done:
		return nil
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
	return nil
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

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// startLauncher runs one of this package's Node launcher scripts, which
// prints {"url": ...} once it listens, and returns the process and URL.
func startLauncher(root, name, script string) (*Process, string, error) {
	node, err := Node(root)
	if err != nil {
		return nil, "", err
	}
	pr, pw := io.Pipe()
	p, err := StartProcess(name, pw, nil, node, filepath.Join(root, "devstack", "emulator", script))
	if err != nil {
		return nil, "", err
	}
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
	go func() { <-p.done; _ = pw.Close() }()
	deadline := time.After(StartTimeout)
	for {
		select {
		case line := <-lines:
			var ready struct{ URL string }
			if json.Unmarshal([]byte(line), &ready) == nil && ready.URL != "" {
				return p, ready.URL, nil
			}
		case <-p.done:
			return nil, "", fmt.Errorf("%s exited before listening (%v); if its npm package is missing run: %s\n%s", name, p.err, InstallNpm, p.Output())
		case <-deadline:
			_ = p.Close()
			return nil, "", fmt.Errorf("%s did not listen within %s\n%s", name, StartTimeout, p.Output())
		}
	}
}

// FreePort asks the kernel for a free 127.0.0.1 TCP port, for services that
// cannot listen on port 0 themselves.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitTCP waits until addr accepts connections or the process exits.
func WaitTCP(p *Process, addr string) error {
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

// Pid is the program's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }
