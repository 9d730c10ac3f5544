package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Call is one AWS operation a component made on one resource. Resource is
// the local name: a queue or table name, "bucket/key" for S3, a secret id
// or parameter name.
type Call struct {
	Component string
	Service   string // SDK service id: SQS, DynamoDB, S3, SSM, Secrets Manager
	Operation string // SendMessageBatch, PutItem, ...
	Resource  string
}

// CallRecorder records the AWS calls of each component: an SDK middleware
// for components that run in this process, a recording proxy in front of
// the emulator for the scraper's own process. The IAM coverage test checks
// the set against each component's role in the synthesized template.
type CallRecorder struct {
	mu      sync.Mutex
	calls   map[Call]int
	servers []*http.Server
}

// NewCallRecorder returns an empty recorder.
func NewCallRecorder() *CallRecorder { return &CallRecorder{calls: map[Call]int{}} }

func (r *CallRecorder) add(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[c]++
}

// Calls returns the distinct calls so far, sorted.
func (r *CallRecorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Call, 0, len(r.calls))
	for c := range r.calls {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Component+a.Service+a.Operation+a.Resource < b.Component+b.Service+b.Operation+b.Resource
	})
	return out
}

// Middleware records every operation of an SDK client built from a config
// carrying it (aws.Config.APIOptions).
func (r *CallRecorder) Middleware(component string) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("RecordCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				r.add(Call{Component: component, Service: awsmiddleware.GetServiceID(ctx), Operation: awsmiddleware.GetOperationName(ctx), Resource: resourceOf(in.Parameters)})
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}

// resourceOf reads the resource an SDK input names.
func resourceOf(input any) string {
	v := reflect.Indirect(reflect.ValueOf(input))
	if v.Kind() != reflect.Struct {
		return ""
	}
	field := func(name string) string {
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() || f.Elem().Kind() != reflect.String {
			return ""
		}
		return f.Elem().String()
	}
	if u := field("QueueUrl"); u != "" {
		return u[strings.LastIndexByte(u, '/')+1:]
	}
	if b := field("Bucket"); b != "" {
		return b + "/" + field("Key")
	}
	for _, name := range []string{"TableName", "SecretId", "Name"} {
		if s := field(name); s != "" {
			return s
		}
	}
	// BatchGetItem / BatchWriteItem name their tables as the map's keys
	// (one table in this pipeline's calls).
	if f := v.FieldByName("RequestItems"); f.IsValid() && f.Kind() == reflect.Map && f.Len() > 0 {
		var names []string
		for _, k := range f.MapKeys() {
			names = append(names, k.String())
		}
		sort.Strings(names)
		return strings.Join(names, ",")
	}
	if f := v.FieldByName("TransactItems"); f.IsValid() && f.Len() > 0 {
		return "transaction"
	}
	return ""
}

// Proxy starts a recording reverse proxy to target (an emulator) and
// returns its URL, for components that run in their own process (the
// scraper, the Lambdas). It understands the protocols their clients speak:
// AWS JSON (X-Amz-Target: SQS, DynamoDB, SSM, Secrets Manager) and S3
// REST, path-style.
func (r *CallRecorder) Proxy(component, target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c, ok := r.fromHTTP(component, req); ok {
			r.add(c)
		}
		rp.ServeHTTP(w, req)
	})}
	go func() { _ = srv.Serve(ln) }()
	r.mu.Lock()
	r.servers = append(r.servers, srv)
	r.mu.Unlock()
	return "http://" + ln.Addr().String(), nil
}

// fromHTTP names the call req makes; not ok for an AWS JSON request
// whose body did not arrive whole (the client gave up while sending it: a
// cancelled context at a task's shutdown): it names no resource, and
// AWS would refuse it unread (recorded, it read as an unmapped grant).
func (r *CallRecorder) fromHTTP(component string, req *http.Request) (Call, bool) {
	if target, op, ok := strings.Cut(req.Header.Get("X-Amz-Target"), "."); ok {
		body, err := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return Call{}, false
		}
		var in struct {
			QueueUrl, TableName, Name, SecretId string
			RequestItems                        map[string]json.RawMessage
		}
		_ = json.Unmarshal(body, &in)
		name := in.QueueUrl[strings.LastIndexByte(in.QueueUrl, '/')+1:]
		for _, n := range []string{in.TableName, in.SecretId, in.Name} {
			if name == "" {
				name = n
			}
		}
		if name == "" && len(in.RequestItems) > 0 {
			var names []string
			for k := range in.RequestItems {
				names = append(names, k)
			}
			sort.Strings(names)
			name = strings.Join(names, ",")
		}
		service := map[string]string{"AmazonSQS": "SQS", "DynamoDB_20120810": "DynamoDB", "AmazonSSM": "SSM", "secretsmanager": "Secrets Manager"}[target]
		if service == "" {
			service = target
		}
		return Call{Component: component, Service: service, Operation: op, Resource: name}, true
	}
	path := strings.TrimPrefix(req.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	op := map[string]string{http.MethodPut: "PutObject", http.MethodGet: "GetObject", http.MethodHead: "HeadObject", http.MethodDelete: "DeleteObject"}[req.Method]
	if key == "" {
		op = req.Method + "Bucket"
	}
	return Call{Component: component, Service: "S3", Operation: op, Resource: bucket + "/" + key}, true
}

// Close stops the proxies.
func (r *CallRecorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, s := range r.servers {
		if err := s.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	r.servers = nil
	return errors.Join(errs...)
}
