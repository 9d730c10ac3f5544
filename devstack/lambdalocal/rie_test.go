package lambdalocal_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/devstack/lambdalocal"
)

// probe starts the testdata function under the emulator.
func probe(t *testing.T, instances int, logs io.Writer) *lambdalocal.Function {
	t.Helper()
	root, err := emulator.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rie, err := lambdalocal.BuildRIE(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := lambdalocal.BuildBootstrap(root, dir, "devstack/lambdalocal/testdata/probe", "bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	fn, err := lambdalocal.Start(rie, lambdalocal.Spec{Name: "probe", Bootstrap: boot, Timeout: 2 * time.Second, MemoryMB: 128,
		Env: map[string]string{"PROBE_SETTING": "from-the-stack"}, Instances: instances, Logs: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fn.Close() })
	return fn
}

func invoke(t *testing.T, fn *lambdalocal.Function, req string) (map[string]string, error) {
	t.Helper()
	out, err := fn.Invoke(context.Background(), []byte(req))
	if err != nil {
		return nil, err
	}
	var m map[string]string
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("answer %q: %v", out, err)
	}
	return m, nil
}

func TestFunctionRunsItsMainWithOnlyItsEnvironment(t *testing.T) {
	// GIVEN a function whose main answers its environment
	t.Setenv("HOME", "/root-of-the-developer")
	logs := &emulator.Buffer{}
	fn := probe(t, 1, logs)
	// WHEN it is invoked
	got, err := invoke(t, fn, `{}`)
	// THEN it sees its own settings and nothing of the caller's environment
	if err != nil || got["PROBE_SETTING"] != "from-the-stack" || got["HOME"] != "" {
		t.Fatalf("answer %v, %v", got, err)
	}
	// AND its JSON log lines reach the logs, the emulator's own lines do not
	if !strings.Contains(logs.String(), `{"msg":"probe started"}`) || strings.Contains(logs.String(), "START RequestId") {
		t.Fatalf("logs: %s", logs.String())
	}
}

func TestFunctionErrorAndTimeoutAreErrorsAndATimedOutInstanceIsReplaced(t *testing.T) {
	fn := probe(t, 1, nil)
	first, err := invoke(t, fn, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	// WHEN the handler fails
	_, err = invoke(t, fn, `{"Fail":true}`)
	// THEN the invocation is a function error with its message
	var fe *lambdalocal.FunctionError
	if !errors.As(err, &fe) || fe.Message != "asked to fail" {
		t.Fatalf("error %v", err)
	}
	// WHEN an invocation outlasts the 2 s timeout
	_, err = invoke(t, fn, `{"Sleep":5000000000}`)
	if !errors.As(err, &fe) || fe.Type != "Timeout" {
		t.Fatalf("error %v", err)
	}
	// THEN the next invocation runs in a new execution environment
	next, err := invoke(t, fn, `{}`)
	if err != nil || next["pid"] == first["pid"] {
		t.Fatalf("after the timeout: %v, %v (before: pid %s)", next, err, first["pid"])
	}
}

func TestConcurrentInvocationsWaitForAFreeInstance(t *testing.T) {
	// GIVEN a function with one instance (the emulator serves one
	// invocation at a time, as an execution environment does)
	fn := probe(t, 1, nil)
	// WHEN three invocations arrive at once
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = fn.Invoke(context.Background(), []byte(`{"Sleep":100000000}`))
		}()
	}
	wg.Wait()
	// THEN each ran, one after the other
	for i, err := range errs {
		if err != nil {
			t.Errorf("invocation %d: %v\n%s", i, err, fn.Output())
		}
	}
}
