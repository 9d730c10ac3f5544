package harness

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
)

// FaultProxy sits between an AWS SDK client and an emulator. While Failing
// is set, requests whose X-Amz-Target starts with Target get the fault in
// Kind (default FaultInternal: a 500, retryable); Attempts counts those
// requests either way.
type FaultProxy struct {
	*httptest.Server
	Target   string
	Failing  atomic.Bool
	Attempts atomic.Int32
	Kind     atomic.Value // FaultKind
}

// FaultKind is what a failing proxy answers, as AWS would.
type FaultKind string

const (
	FaultInternal           FaultKind = "internal"            // 500 InternalError: retried
	FaultThrottling         FaultKind = "throttling"          // 400 RequestThrottled: retried
	FaultAccessDenied       FaultKind = "access-denied"       // 400 AccessDeniedException: not retried
	FaultInvalidCredentials FaultKind = "invalid-credentials" // 400 UnrecognizedClientException: not retried
	FaultNetwork            FaultKind = "network"             // connection closed without an answer: retried
)

var faultAnswers = map[FaultKind]struct {
	status int
	body   string
}{
	FaultInternal:           {500, `{"__type":"com.amazonaws.sqs#InternalError","message":"injected by the test proxy"}`},
	FaultThrottling:         {400, `{"__type":"com.amazonaws.sqs#RequestThrottled","message":"Rate exceeded (injected)"}`},
	FaultAccessDenied:       {400, `{"__type":"com.amazon.coral.service#AccessDeniedException","message":"User is not authorized to perform: sqs:sendmessage (injected)"}`},
	FaultInvalidCredentials: {400, `{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"The security token included in the request is invalid (injected)"}`},
}

// StartFaultProxy proxies to target (an emulator URL) on 127.0.0.1.
func StartFaultProxy(t T, target, amzTargetPrefix string) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("harness: fault proxy target: %v", err)
	}
	p := &FaultProxy{Target: amzTargetPrefix}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), p.Target) {
			p.Attempts.Add(1)
			if p.Failing.Load() {
				kind, _ := p.Kind.Load().(FaultKind)
				if kind == FaultNetwork {
					if hj, ok := w.(http.Hijacker); ok {
						if conn, _, err := hj.Hijack(); err == nil {
							_ = conn.Close()
							return
						}
					}
				}
				a, ok := faultAnswers[kind]
				if !ok {
					a = faultAnswers[FaultInternal]
				}
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(a.status)
				_, _ = io.WriteString(w, a.body)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}
