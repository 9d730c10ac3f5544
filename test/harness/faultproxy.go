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
// is set, requests whose X-Amz-Target starts with Target get a 500 (a
// retryable AWS error); Attempts counts those requests either way.
type FaultProxy struct {
	*httptest.Server
	Target   string
	Failing  atomic.Bool
	Attempts atomic.Int32
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
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, `{"__type":"com.amazonaws.sqs#InternalError","message":"injected by the test proxy"}`)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}
