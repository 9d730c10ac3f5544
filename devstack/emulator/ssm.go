package emulator

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ParameterStore stands in for SSM Parameter Store: it answers the AWS
// JSON 1.1 protocol's GetParameter (what the pipeline's components call)
// for the String parameters set here, and ParameterNotFound otherwise.
// Components reach it as the SDK reaches SSM (AWS_ENDPOINT_URL_SSM).
type ParameterStore struct {
	URL    string
	mu     sync.Mutex
	params map[string]string
	srv    *http.Server
}

// StartParameterStore listens on a free 127.0.0.1 port.
func StartParameterStore() (*ParameterStore, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &ParameterStore{URL: "http://" + ln.Addr().String(), params: map[string]string{}}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Set writes a parameter, as an operator does with put-parameter.
func (p *ParameterStore) Set(name, value string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.params[name] = value
}

func (p *ParameterStore) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if op := r.Header.Get("X-Amz-Target"); op != "AmazonSSM.GetParameter" {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "UnknownOperationException", "message": "not served locally: " + op})
		return
	}
	var in struct{ Name string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "ValidationException", "message": err.Error()})
		return
	}
	p.mu.Lock()
	v, ok := p.params[in.Name]
	p.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": "ParameterNotFound", "message": in.Name})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
		"Name": in.Name, "Type": "String", "Value": v, "Version": 1, "DataType": "text",
		"ARN": "arn:aws:ssm:" + Region + ":000000000000:parameter/" + strings.TrimPrefix(in.Name, "/"),
	}})
}

// Close stops the store.
func (p *ParameterStore) Close() error {
	if err := p.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
