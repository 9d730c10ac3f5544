package handler_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/golang-jwt/jwt/v5"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/test/harness"
)

// TestRealResponsesMatchTheOpenAPIDescription drives every route of the
// running handler to every status it documents and validates each request
// and response against api/openapi.yaml.
func TestRealResponsesMatchTheOpenAPIDescription(t *testing.T) {
	spec, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, derrs := v.ValidateDocument(); !ok {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI document: %v", derrs)
	}

	f := setup(t)
	f.deps.Quota = quota.NewStore(f.ddb.DynamoDB, "idempotency", idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now)
	f.server = f.newServer(api.Config{CallerRequests: 1000, CallerWindow: time.Hour, CreatorWaiting: 10, CreatorDrain: time.Hour})
	user := tokenFor(t, "user-1", time.Hour, "")
	ops := tokenFor(t, "ops-1", time.Hour, "ops admin")
	seen := map[string]bool{}
	check := func(name, method, path, token, body string, headers map[string]string, want int) {
		t.Helper()
		build := func() *http.Request {
			r := httptest.NewRequest(method, "https://example.execute-api.us-east-1.amazonaws.com"+path, strings.NewReader(body))
			if body != "" {
				r.Header.Set("Content-Type", "application/json")
			}
			if token != "" {
				r.Header.Set("Authorization", "Bearer "+token)
			}
			for k, v := range headers {
				r.Header.Set(k, v)
			}
			return r
		}
		w := httptest.NewRecorder()
		f.server.ServeHTTP(w, build())
		if w.Code != want {
			t.Fatalf("%s: status %d, want %d: %s", name, w.Code, want, w.Body)
		}
		resp := w.Result()
		resp.Body = readCloser{bytes.NewReader(w.Body.Bytes())}
		// A refused request is invalid on purpose: only its answer must match.
		validate := v.ValidateHttpResponse
		if want < 400 {
			validate = v.ValidateHttpRequestResponse
		}
		if ok, verrs := validate(build(), resp); !ok {
			for _, e := range verrs {
				t.Errorf("%s (%d): %s: %s %v", name, want, e.Message, e.Reason, e.SchemaValidationErrors)
			}
		}
		seen[method+" "+path+" "+http.StatusText(want)] = true
	}

	one := `{"creatorId":"creator-1","recipientId":"fan-9","content":"hello","priority":"high","metadata":{"k":"v"}}`
	check("single", "POST", api.PathSend, user, one, nil, 202)
	check("batch", "POST", api.PathSend, user, `{"messages":[`+one+`,`+one+`]}`, nil, 202)
	check("keyed", "POST", api.PathSend, user, one, map[string]string{"Idempotency-Key": "k1"}, 202)
	check("keyed retry", "POST", api.PathSend, user, one, map[string]string{"Idempotency-Key": "k1"}, 202)
	check("key with another body", "POST", api.PathSend, user, `{"recipientId":"fan-1","content":"other"}`, map[string]string{"Idempotency-Key": "k1"}, 422)
	check("invalid", "POST", api.PathSend, user, `{"recipientId":"..","content":""}`, nil, 400)
	check("no token", "POST", api.PathSend, "", one, nil, 401)
	check("foreign creator", "POST", api.PathSend, tokenWith(t, jwt.MapClaims{"sub": "u2", "exp": time.Now().Add(time.Hour).Unix()}), one, nil, 403)
	check("status ops", "GET", api.PathStatus, ops, "", nil, 200)
	check("status user", "GET", api.PathStatus, user, "", nil, 403)
	check("replay user", "POST", api.PathReplay, user, "", nil, 403)
	check("replay admin", "POST", api.PathReplay, ops, "", nil, 200)
	for range 6 { // fill creator-1's waiting cap of 10 (4 sent above)
		check("fill", "POST", api.PathSend, user, one, nil, 202)
	}
	check("creator cap", "POST", api.PathSend, user, one, nil, 429)

	// SQS down: stored for replay (500); fallback gone too: nothing stored (503)
	other := `{"recipientId":"fan-1","content":"hello"}`
	f.proxy.Failing.Store(true)
	check("stored for replay", "POST", api.PathSend, user, other, nil, 500)
	check("status degraded", "GET", api.PathStatus, ops, "", nil, 503)
	if _, err := f.ddb.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String("fallback")}); err != nil {
		t.Fatal(err)
	}
	check("neither queued nor stored", "POST", api.PathSend, user, other, nil, 503)
	t.Logf("validated %d route/status pairs", len(seen))
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
