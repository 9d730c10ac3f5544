package lambdalocal_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/golang-jwt/jwt/v5"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	"github.com/huntaze/message-pipeline/devstack/lambdalocal"
	"github.com/huntaze/message-pipeline/internal/auth"
)

const (
	issuer   = "https://auth.dev.huntaze.test/"
	audience = "huntaze-api-dev"
)

// adapter is a function behind the front: the API Lambda's own adapter
// (httpadapter v2) around a handler, recording the events it got.
type adapter struct {
	mu     sync.Mutex
	events []events.APIGatewayV2HTTPRequest
	proxy  *httpadapter.HandlerAdapterV2
	fail   bool
}

func (a *adapter) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.events = append(a.events, ev)
	a.mu.Unlock()
	if a.fail {
		return nil, &lambdalocal.FunctionError{Function: "api", Type: "errorString", Message: "boom"}
	}
	resp, err := a.proxy.ProxyWithContext(ctx, ev)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

func startFront(t *testing.T, h http.Handler) (*lambdalocal.Front, *adapter, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := emulator.StartJWKS(&key.PublicKey, "k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = jwks.Close() })
	fn := &adapter{proxy: httpadapter.NewV2(h)}
	f, err := lambdalocal.StartFront(fn, lambdalocal.FrontConfig{
		Routes:     []string{"POST /send"},
		MaxBody:    lambdalocal.HTTPAPIMaxBody,
		Authorizer: lambdalocal.JWTAuthorizer{Issuer: issuer, Audiences: []string{audience}, JWKSURL: jwks.URL},
		Log:        slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f, fn, key
}

func sign(t *testing.T, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = "k1"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func post(t *testing.T, url, token, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestFrontPassesVerifiedClaimsAsAPIGatewayRendersThem(t *testing.T) {
	// GIVEN a front whose function authenticates as the API Lambda does
	// (auth.APIGatewayClaims) and answers 202 with a header
	var got auth.Principal
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.APIGatewayClaims{}.Authenticate(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got = p
		w.Header().Set("X-Answer", "yes")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"queued"}`)
	})
	f, fn, key := startFront(t, h)
	exp := time.Now().Add(time.Hour).Unix()
	token := sign(t, key, jwt.MapClaims{"sub": "user-1", "iss": issuer, "aud": audience, "exp": exp, "scope": "admin ops", "creators": []string{"creator-a", "creator-b"}})

	// WHEN a request with a valid token is sent
	resp, body := post(t, f.URL+"/send", token, `{"content":"hi"}`)

	// THEN the function got a 2.0 event whose claims are strings, the array
	// as "[a b]", the number without exponent
	if resp.StatusCode != http.StatusAccepted || body != `{"status":"queued"}` || resp.Header.Get("X-Answer") != "yes" {
		t.Fatalf("answer %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if len(fn.events) != 1 {
		t.Fatalf("invoked %d times", len(fn.events))
	}
	ev := fn.events[0]
	claims := ev.RequestContext.Authorizer.JWT.Claims
	if ev.Version != "2.0" || ev.RouteKey != "POST /send" || ev.Body != `{"content":"hi"}` || ev.IsBase64Encoded {
		t.Errorf("event %+v", ev)
	}
	if claims["creators"] != "[creator-a creator-b]" || claims["sub"] != "user-1" || claims["scope"] != "admin ops" || claims["exp"] != jsonNumber(exp) {
		t.Errorf("claims %v", claims)
	}
	// AND the API's authenticator reads them back
	if got.Subject != "user-1" || strings.Join(got.Creators, ",") != "creator-a,creator-b" || !got.HasScope("admin") {
		t.Errorf("principal %+v", got)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestFrontRefusesWhatTheAuthorizerRefusesWithoutInvoking(t *testing.T) {
	// GIVEN a front and tokens that are each wrong in one way
	f, fn, key := startFront(t, http.NotFoundHandler())
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := jwt.MapClaims{"sub": "u", "iss": issuer, "aud": audience, "exp": time.Now().Add(time.Hour).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	hmac, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, good).SignedString([]byte("a-shared-secret-a-shared-secret!!"))
	cases := map[string]string{
		"no token":       "",
		"other issuer":   sign(t, key, with("iss", "https://elsewhere.test/")),
		"other audience": sign(t, key, with("aud", "huntaze-api-prod")),
		"expired":        sign(t, key, with("exp", time.Now().Add(-time.Minute).Unix())),
		"no expiry":      sign(t, key, with("exp", nil)),
		"other key":      sign(t, other, good),
		"HMAC":           hmac,
	}
	for name, token := range cases {
		// WHEN it is sent
		resp, body := post(t, f.URL+"/send", token, `{}`)
		// THEN the front answers 401 as the HTTP API does
		if resp.StatusCode != http.StatusUnauthorized || body != `{"message":"Unauthorized"}` {
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	// AND an unknown route is 404 before any token is looked at
	if resp, body := post(t, f.URL+"/other", "", `{}`); resp.StatusCode != http.StatusNotFound || body != `{"message":"Not Found"}` {
		t.Errorf("unknown route: %d %s", resp.StatusCode, body)
	}
	// AND the function was never invoked
	if len(fn.events) != 0 {
		t.Fatalf("invoked %d times", len(fn.events))
	}
}

func TestFrontAnswers500WhenTheFunctionFails(t *testing.T) {
	f, fn, key := startFront(t, http.NotFoundHandler())
	fn.fail = true
	token := sign(t, key, jwt.MapClaims{"sub": "u", "iss": issuer, "aud": audience, "exp": time.Now().Add(time.Hour).Unix()})
	resp, body := post(t, f.URL+"/send", token, `{}`)
	if resp.StatusCode != http.StatusInternalServerError || body != `{"message":"Internal Server Error"}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestRenderClaimMatchesAPIGateway(t *testing.T) {
	for in, want := range map[string]string{
		`"x"`: "x", `["a","b"]`: "[a b]", `[]`: "[]", `1735689600`: "1735689600", `true`: "true", `1.5`: "1.5",
	} {
		var v any
		if err := json.Unmarshal([]byte(in), &v); err != nil {
			t.Fatal(err)
		}
		if got := lambdalocal.RenderClaim(v); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}
