package awsjson_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/internal/awsenv"
	"github.com/huntaze/message-pipeline/internal/awsjson"
)

var creds = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: "session-token"}

// call is one request as the service saw it.
type call struct {
	target, body string
	signedOK     bool
	why          string
}

// service is a JSON-protocol endpoint on 127.0.0.1 that records each call
// and checks its SigV4 signature by signing the same request again with the
// known credentials at the request's X-Amz-Date.
type service struct {
	mu      sync.Mutex
	calls   []call
	answers []func(w http.ResponseWriter)
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := call{target: r.Header.Get("X-Amz-Target"), body: string(body)}
	c.signedOK, c.why = verify(r, body)
	s.mu.Lock()
	s.calls = append(s.calls, c)
	answer := s.answers[min(len(s.calls), len(s.answers))-1]
	s.mu.Unlock()
	answer(w)
}

func verify(r *http.Request, body []byte) (bool, string) {
	got := r.Header.Get("Authorization")
	if !strings.HasPrefix(got, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || r.Header.Get("X-Amz-Security-Token") != creds.SessionToken {
		return false, "no SigV4 Authorization of the caller's key, or no session token"
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return false, "no X-Amz-Date"
	}
	service := strings.Split(strings.Split(got, "/")[3], "/")[0]
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), strings.NewReader(string(body)))
	for _, h := range []string{"Content-Type", "X-Amz-Target"} {
		again.Header.Set(h, r.Header.Get(h))
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, sha(body), service, "eu-west-3", at); err != nil {
		return false, err.Error()
	}
	if again.Header.Get("Authorization") != got {
		return false, "signature does not match the request"
	}
	return true, ""
}

func answerJSON(status int, v any) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
}

func client(t *testing.T, svc awsjson.Service, s *service) *awsjson.Client {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	cfg := awsenv.Config(map[string]string{"AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey, "AWS_SESSION_TOKEN": creds.SessionToken,
		"AWS_ENDPOINT_URL_" + strings.ToUpper(strings.ReplaceAll(svc.SDKID, " ", "_")): srv.URL})
	return awsjson.New(cfg, svc)
}

func TestParameterReadsTheValueWithOneSignedGetParameter(t *testing.T) {
	s := &service{answers: []func(http.ResponseWriter){answerJSON(200, map[string]any{"Parameter": map[string]any{"Name": "/huntaze/flag", "Value": "false"}})}}
	p := awsjson.Parameter{Client: client(t, awsjson.SSM, s), Name: "/huntaze/flag"}
	v, found, err := p.Get(context.Background())
	if err != nil || !found || v != "false" {
		t.Fatalf("Get = %q, %v, %v", v, found, err)
	}
	if len(s.calls) != 1 {
		t.Fatalf("%d calls, want 1", len(s.calls))
	}
	c := s.calls[0]
	if c.target != "AmazonSSM.GetParameter" || c.body != `{"Name":"/huntaze/flag"}` || !c.signedOK {
		t.Fatalf("call: target %q, body %s, signed %v (%s)", c.target, c.body, c.signedOK, c.why)
	}
}

func TestParameterAbsentIsNotFoundAndOtherErrorsAreErrors(t *testing.T) {
	s := &service{answers: []func(http.ResponseWriter){answerJSON(400, map[string]string{"__type": "com.amazonaws.ssm#ParameterNotFound", "message": "no"})}}
	p := awsjson.Parameter{Client: client(t, awsjson.SSM, s), Name: "/x"}
	if v, found, err := p.Get(context.Background()); err != nil || found || v != "" {
		t.Fatalf("absent parameter: %q, %v, %v", v, found, err)
	}
	s.answers = []func(http.ResponseWriter){answerJSON(400, map[string]string{"__type": "AccessDeniedException", "Message": "not allowed"})}
	if _, _, err := p.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("denied read: %v", err)
	}
}

func TestCallRetriesAServerErrorAndThrottlingThenSucceeds(t *testing.T) {
	s := &service{answers: []func(http.ResponseWriter){
		answerJSON(500, map[string]string{"__type": "InternalServerError"}),
		answerJSON(400, map[string]string{"__type": "ThrottlingException"}),
		answerJSON(200, map[string]any{"Parameter": map[string]any{"Value": "true"}}),
	}}
	p := awsjson.Parameter{Client: client(t, awsjson.SSM, s), Name: "/x"}
	if v, _, err := p.Get(context.Background()); err != nil || v != "true" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if len(s.calls) != 3 {
		t.Fatalf("%d calls, want 3 (two retried)", len(s.calls))
	}
}

func TestSecretStringReadsTheCurrentValueAndNeverPutsItInAnError(t *testing.T) {
	const token = "redis-auth-token-value"
	s := &service{answers: []func(http.ResponseWriter){answerJSON(200, map[string]any{"ARN": "arn:s", "SecretString": token, "VersionStages": []string{"AWSCURRENT"}})}}
	sec := awsjson.Secrets{Client: client(t, awsjson.SecretsManager, s)}
	got, err := sec.SecretString(context.Background(), "arn:aws:secretsmanager:eu-west-3:1:secret:redis")
	if err != nil || got != token {
		t.Fatalf("SecretString: %d characters, error %v", len(got), err)
	}
	c := s.calls[0]
	if c.target != "secretsmanager.GetSecretValue" || c.body != `{"SecretId":"arn:aws:secretsmanager:eu-west-3:1:secret:redis"}` || !c.signedOK {
		t.Fatalf("call: target %q, body %s, signed %v (%s)", c.target, c.body, c.signedOK, c.why)
	}
	// An answer the reader cannot use is an error without the value.
	s.answers = []func(http.ResponseWriter){func(w http.ResponseWriter) { _, _ = io.WriteString(w, `{"SecretString":"`+token+`"`) }}
	if _, err := sec.SecretString(context.Background(), "arn"); err == nil || strings.Contains(err.Error(), token) {
		t.Fatalf("truncated answer: error %v (must be one, without the value)", err != nil)
	}
}

func TestParameterReadsTheDevstacksParameterStore(t *testing.T) {
	ps, err := emulator.StartParameterStore()
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	ps.Set("/huntaze/dev/rate-limiter-enabled", "off")
	cfg := awsenv.Config(map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL_SSM": ps.URL})
	c := awsjson.New(cfg, awsjson.SSM)
	if v, found, err := (awsjson.Parameter{Client: c, Name: "/huntaze/dev/rate-limiter-enabled"}).Get(context.Background()); err != nil || !found || v != "off" {
		t.Fatalf("Get = %q, %v, %v", v, found, err)
	}
	if _, found, err := (awsjson.Parameter{Client: c, Name: "/absent"}).Get(context.Background()); err != nil || found {
		t.Fatalf("absent: %v, %v", found, err)
	}
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
