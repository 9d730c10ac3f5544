package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/golang-jwt/jwt/v5"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/message"
	"github.com/huntaze/message-pipeline/internal/quota"
	"github.com/huntaze/message-pipeline/test/harness"
)

// environments are the deployments api/openapi.yaml must list a server for
// (infra/config.go; not imported here: it would compile the CDK into this test).
var environments = []string{"dev", "staging", "prod"}

// apiHeaders are the response headers of the contract: each one a handler
// sends must be documented under that status, and each documented one sent.
var apiHeaders = []string{"Retry-After", "Idempotent-Replayed", "WWW-Authenticate", "X-Correlation-Id"}

func loadSpec(t *testing.T) ([]byte, *v3.Document) {
	t.Helper()
	spec, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	model, err := doc.BuildV3Model()
	if err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	return spec, &model.Model
}

// TestOpenAPIHasLicenseAndAServerPerEnvironment: what linters ask of an API
// description (info.license, servers), and one server per deployment.
func TestOpenAPIHasLicenseAndAServerPerEnvironment(t *testing.T) {
	_, m := loadSpec(t)
	if m.Info == nil || m.Info.License == nil || m.Info.License.Name == "" || (m.Info.License.Identifier == "" && m.Info.License.URL == "") {
		t.Errorf("info.license needs a name and an identifier or url")
	}
	if m.Info.Contact == nil || m.Info.Contact.Name == "" {
		t.Errorf("info.contact needs a name")
	}
	for _, env := range environments {
		found := false
		for _, s := range m.Servers {
			if strings.HasPrefix(s.Description, env+":") {
				found = true
				if !strings.HasPrefix(s.URL, "https://") {
					t.Errorf("server %s: %s is not https", env, s.URL)
				}
				for name, v := range s.Variables.FromOldest() {
					if v.Default == "" || v.Description == "" {
						t.Errorf("server %s: variable %s needs a default and a description", env, name)
					}
				}
			}
		}
		if !found {
			t.Errorf("no server whose description starts with %q", env+":")
		}
	}
}

// TestHandlerTypesMatchTheOpenAPISchemas: every JSON field of the handler's
// request and response types is a property of its schema, and the reverse.
func TestHandlerTypesMatchTheOpenAPISchemas(t *testing.T) {
	_, m := loadSpec(t)
	for schema, typ := range map[string]reflect.Type{
		"Draft":       reflect.TypeFor[api.Draft](),
		"Result":      reflect.TypeFor[api.Result](),
		"Status":      reflect.TypeFor[api.StatusResponse](),
		"QueueStatus": reflect.TypeFor[api.QueueStatus](),
		"FieldError":  reflect.TypeFor[message.FieldError](),
	} {
		sp, ok := m.Components.Schemas.Get(schema)
		if !ok {
			t.Errorf("components.schemas.%s is missing", schema)
			continue
		}
		var documented []string
		for name := range sp.Schema().Properties.KeysFromOldest() {
			documented = append(documented, name)
		}
		var fields []string
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "-" && f.IsExported() {
				fields = append(fields, cmpName(name, f.Name))
			}
		}
		for _, f := range fields {
			if !slices.Contains(documented, f) {
				t.Errorf("%s.%s is a field of %s but not a property of components.schemas.%s", typ.Name(), f, typ, schema)
			}
		}
		for _, d := range documented {
			if !slices.Contains(fields, d) {
				t.Errorf("components.schemas.%s.%s is documented but %s has no such field", schema, d, typ)
			}
		}
	}
}

func cmpName(tag, field string) string {
	if tag == "" {
		return field
	}
	return tag
}

// TestRealResponsesMatchTheOpenAPIDescription drives every route of the
// running handler to every status it documents and validates each request
// and response against api/openapi.yaml. It then fails for anything on one
// side only: a status, a response field or an API header the handler
// produces that is not documented, or one documented that no answer holds.
func TestRealResponsesMatchTheOpenAPIDescription(t *testing.T) {
	spec, model := loadSpec(t)
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
	c := newContract(model)

	f := setup(t)
	f.deps.Quota = quota.NewStore(f.ddb.DynamoDB, "idempotency", idempotency.KeyAttribute, idempotency.TTLAttribute, time.Now)
	f.server = f.newServer(serverConfig(func(c *api.Config) {
		c.CallerRequests, c.CallerWindow, c.CreatorWaiting, c.CreatorDrain = 1000, time.Hour, 10, time.Hour
	}))
	disabled, err := api.New(serverConfig(func(c *api.Config) { c.Unavailable = "no INTAKE_QUEUE_URL" }), f.deps)
	if err != nil {
		t.Fatal(err)
	}
	user := tokenFor(t, "user-1", time.Hour, "")
	ops := tokenFor(t, "ops-1", time.Hour, "ops admin")
	check := func(name string, srv http.Handler, method, path, token, body string, headers map[string]string, want int) map[string]any {
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
		srv.ServeHTTP(w, build())
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
		return c.observe(t, name, method, path, want, w.Header(), w.Body.Bytes())
	}
	s := f.server

	one := `{"creatorId":"creator-1","recipientId":"fan-9","content":"hello","priority":"high","metadata":{"k":"v"}}`
	check("single", s, "POST", api.PathSend, user, one, nil, 202)
	check("batch", s, "POST", api.PathSend, user, `{"messages":[`+one+`,`+one+`]}`, nil, 202)
	check("named by the client", s, "POST", api.PathSend, user, `{"recipientId":"fan-1","content":"named"}`, map[string]string{api.HeaderCorrelationID: "checkout-7"}, 202)
	check("keyed", s, "POST", api.PathSend, user, one, map[string]string{"Idempotency-Key": "k1"}, 202)
	check("keyed retry", s, "POST", api.PathSend, user, one, map[string]string{"Idempotency-Key": "k1"}, 202)
	check("key with another body", s, "POST", api.PathSend, user, `{"recipientId":"fan-1","content":"other"}`, map[string]string{"Idempotency-Key": "k1"}, 422)
	// A request with this key is in progress (its record begun, not finished).
	inProgress := `{"recipientId":"fan-1","content":"in progress"}`
	if _, _, err := f.deps.Idempotency.Begin(context.Background(), "user-1\x00k-busy", idempotency.Hash([]byte(inProgress)), time.Minute, 1); err != nil {
		t.Fatal(err)
	}
	check("same key in progress", s, "POST", api.PathSend, user, inProgress, map[string]string{"Idempotency-Key": "k-busy"}, 409)
	check("invalid", s, "POST", api.PathSend, user, `{"recipientId":"..","content":""}`, nil, 400)
	// The TypeScript client's check() probe: refused before quota, claims or sends.
	if b := check("empty batch (client check probe)", s, "POST", api.PathSend, user, `{"messages":[]}`, nil, 400); !strings.Contains(fmt.Sprint(b["errors"]), "messages") {
		t.Errorf("the empty batch's 400 must name the field messages (clients/typescript check() relies on it): %v", b)
	}
	huge := map[string]string{}
	for i := range message.MaxMetadataKeys {
		huge[fmt.Sprintf("k%d", i)] = strings.Repeat("😀", message.MaxMetadataValLen) // each within its limit, 800 KB together
	}
	hugeBody, _ := json.Marshal(map[string]any{"recipientId": "fan-1", "content": "big", "metadata": huge})
	check("over the SQS size", s, "POST", api.PathSend, user, string(hugeBody), nil, 413)
	check("not JSON", s, "POST", api.PathSend, user, one, map[string]string{"Content-Type": "text/plain"}, 415)
	check("no token", s, "POST", api.PathSend, "", one, nil, 401)
	check("foreign creator", s, "POST", api.PathSend, tokenWith(t, jwt.MapClaims{"sub": "u2", "exp": time.Now().Add(time.Hour).Unix()}), one, nil, 403)
	check("status ops", s, "GET", api.PathStatus, ops, "", nil, 200)
	check("status no token", s, "GET", api.PathStatus, "", "", nil, 401)
	check("status user", s, "GET", api.PathStatus, user, "", nil, 403)
	check("replay no token", s, "POST", api.PathReplay, "", "", nil, 401)
	check("replay user", s, "POST", api.PathReplay, user, "", nil, 403)
	check("replay admin", s, "POST", api.PathReplay, ops, "", nil, 200)
	if b := check("sending disabled", disabled, "POST", api.PathSend, user, one, nil, 503); !strings.HasPrefix(fmt.Sprint(b["error"]), "rate limiting is unavailable") {
		t.Errorf(`the disabled 503 must start with "rate limiting is unavailable" (clients/typescript maps it to SendingDisabledError): %v`, b)
	}
	check("replay while disabled", disabled, "POST", api.PathReplay, ops, "", nil, 503)
	for range 6 { // fill creator-1's waiting cap of 10 (4 sent above)
		check("fill", s, "POST", api.PathSend, user, one, nil, 202)
	}
	check("creator cap", s, "POST", api.PathSend, user, one, nil, 429)

	// SQS down: stored for replay (500), and its keyed retry gets the stored
	// answer; fallback gone too: nothing stored (503), and the replay fails (500).
	other := `{"recipientId":"fan-1","content":"hello"}`
	f.proxy.Failing.Store(true)
	check("stored for replay", s, "POST", api.PathSend, user, other, map[string]string{"Idempotency-Key": "k500"}, 500)
	check("stored for replay, retried", s, "POST", api.PathSend, user, other, map[string]string{"Idempotency-Key": "k500"}, 500)
	check("status degraded", s, "GET", api.PathStatus, ops, "", nil, 503)
	if _, err := f.ddb.DynamoDB.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String("fallback")}); err != nil {
		t.Fatal(err)
	}
	check("neither queued nor stored", s, "POST", api.PathSend, user, other, nil, 503)
	check("replay without its table", s, "POST", api.PathReplay, ops, "", nil, 500)

	c.report(t)
}

// contract holds what api/openapi.yaml documents and what the answers held.
type contract struct {
	m *v3.Document
	// documented and seen: "POST /path 202", "... 202 header Retry-After",
	// "Schema.property".
	statuses, headers, fields             map[string]bool
	seenStatuses, seenHeaders, seenFields map[string]bool
}

func newContract(m *v3.Document) *contract {
	c := &contract{m: m, statuses: map[string]bool{}, headers: map[string]bool{}, fields: map[string]bool{},
		seenStatuses: map[string]bool{}, seenHeaders: map[string]bool{}, seenFields: map[string]bool{}}
	visited := map[string]bool{}
	for path, item := range m.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			for code, r := range op.Responses.Codes.FromOldest() {
				at := strings.ToUpper(method) + " " + path + " " + code
				c.statuses[at] = true
				for h := range r.Headers.KeysFromOldest() {
					c.headers[at+" header "+http.CanonicalHeaderKey(h)] = true
				}
				if mt, ok := r.Content.Get("application/json"); ok && mt.Schema != nil {
					c.declare(mt.Schema, at, visited)
				}
			}
		}
	}
	return c
}

// schemaName is a component's name, else where the inline schema sits.
func schemaName(sp *base.SchemaProxy, where string) string {
	if ref := sp.GetReference(); ref != "" {
		return ref[strings.LastIndexByte(ref, '/')+1:]
	}
	return where
}

// declare records every property of every schema reachable from sp.
func (c *contract) declare(sp *base.SchemaProxy, where string, visited map[string]bool) {
	name := schemaName(sp, where)
	if visited[name] {
		return
	}
	visited[name] = true
	s := sp.Schema()
	for i, o := range s.OneOf {
		c.declare(o, fmt.Sprintf("%s.oneOf[%d]", name, i), visited)
	}
	for prop, p := range s.Properties.FromOldest() {
		c.fields[name+"."+prop] = true
		c.declare(p, name+"."+prop, visited)
	}
	if s.Items != nil && s.Items.IsA() {
		c.declare(s.Items.A, name+"[]", visited)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.IsA() {
		c.declare(s.AdditionalProperties.A, name+"{}", visited)
	}
}

// observe checks one answer's status, headers and body fields against the
// description and records what it held; it returns the body when an object.
func (c *contract) observe(t *testing.T, name, method, path string, code int, h http.Header, body []byte) map[string]any {
	t.Helper()
	at := fmt.Sprintf("%s %s %d", method, path, code)
	c.seenStatuses[at] = true
	if !c.statuses[at] {
		t.Errorf("%s: the handler answers %s, which api/openapi.yaml does not document", name, at)
		return nil
	}
	for _, hd := range apiHeaders {
		if h.Get(hd) == "" {
			continue
		}
		key := at + " header " + http.CanonicalHeaderKey(hd)
		c.seenHeaders[key] = true
		if !c.headers[key] {
			t.Errorf("%s: the answer %s sends header %s, which api/openapi.yaml does not document there", name, at, hd)
		}
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("%s: body is not JSON: %v: %s", name, err, body)
		return nil
	}
	item, _ := c.m.Paths.PathItems.Get(path)
	op, _ := item.GetOperations().Get(strings.ToLower(method))
	r, _ := op.Responses.Codes.Get(fmt.Sprint(code))
	mt, ok := r.Content.Get("application/json")
	if !ok || mt.Schema == nil {
		t.Errorf("%s: %s documents no application/json body", name, at)
		return nil
	}
	for _, e := range c.walk(mt.Schema, at, v) {
		t.Errorf("%s (%s): %s", name, at, e)
	}
	obj, _ := v.(map[string]any)
	return obj
}

// walk matches v against the schema and records the properties it holds;
// it returns each field v has that the schema does not declare.
func (c *contract) walk(sp *base.SchemaProxy, where string, v any) []string {
	name := schemaName(sp, where)
	s := sp.Schema()
	if len(s.OneOf) > 0 {
		for i, o := range s.OneOf {
			if fits(o.Schema(), v) {
				return c.walk(o, fmt.Sprintf("%s.oneOf[%d]", name, i), v)
			}
		}
		return []string{fmt.Sprintf("%s: the body fits none of oneOf: %v", name, v)}
	}
	var problems []string
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if p, ok := s.Properties.Get(k); ok {
				c.seenFields[name+"."+k] = true
				problems = append(problems, c.walk(p, name+"."+k, x[k])...)
			} else if s.AdditionalProperties != nil && s.AdditionalProperties.IsA() {
				problems = append(problems, c.walk(s.AdditionalProperties.A, name+"{}", x[k])...)
			} else {
				problems = append(problems, fmt.Sprintf("field %q is not a property of %s in api/openapi.yaml", k, name))
			}
		}
	case []any:
		if s.Items != nil && s.Items.IsA() {
			for _, e := range x {
				problems = append(problems, c.walk(s.Items.A, name+"[]", e)...)
			}
		}
	}
	return problems
}

// fits: v is an object holding the schema's required properties and no
// property the schema lacks.
func fits(s *base.Schema, v any) bool {
	x, ok := v.(map[string]any)
	if !ok {
		return false
	}
	for _, r := range s.Required {
		if _, ok := x[r]; !ok {
			return false
		}
	}
	for k := range x {
		if _, ok := s.Properties.Get(k); !ok {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// report fails for what is documented but no answer held.
func (c *contract) report(t *testing.T) {
	t.Helper()
	for _, side := range []struct {
		what            string
		documented, got map[string]bool
	}{{"status", c.statuses, c.seenStatuses}, {"header", c.headers, c.seenHeaders}, {"response field", c.fields, c.seenFields}} {
		var missing []string
		for k := range side.documented {
			if !side.got[k] {
				missing = append(missing, k)
			}
		}
		sort.Strings(missing)
		for _, k := range missing {
			t.Errorf("api/openapi.yaml documents %s %s, but no answer of the handler in this test holds it (drive it here, or remove it)", side.what, k)
		}
	}
	t.Logf("validated %d route/status pairs, %d headers, %d response fields", len(c.seenStatuses), len(c.seenHeaders), len(c.seenFields))
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
