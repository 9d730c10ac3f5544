package auth

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/golang-jwt/jwt/v5"
)

var (
	secret = []byte("test-secret-at-least-32-bytes-long!!")
	now    = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
)

func token(t *testing.T, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWTVerifier(t *testing.T) {
	v := NewHMACVerifier(secret, "https://issuer.test", "huntaze-api", func() time.Time { return now })
	good := jwt.MapClaims{"sub": "user-1", "iss": "https://issuer.test", "aud": "huntaze-api", "exp": now.Add(time.Hour).Unix(), "scope": "messages:send admin"}
	with := func(k string, val any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for a, b := range good {
			c[a] = b
		}
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	for _, tc := range []struct {
		name   string
		header string
		ok     bool
	}{
		{"valid", "Bearer " + token(t, secret, good), true},
		{"no header", "", false},
		{"not bearer", "Basic abc", false},
		{"expired", "Bearer " + token(t, secret, with("exp", now.Add(-time.Minute).Unix())), false},
		{"no expiry", "Bearer " + token(t, secret, with("exp", nil)), false},
		{"wrong signature", "Bearer " + token(t, []byte("another-secret-another-secret-!!"), good), false},
		{"wrong audience", "Bearer " + token(t, secret, with("aud", "other")), false},
		{"wrong issuer", "Bearer " + token(t, secret, with("iss", "https://evil.test")), false},
		{"no subject", "Bearer " + token(t, secret, with("sub", nil)), false},
		{"alg none", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyLTEifQ.", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.header != "" {
				r.Header.Set("Authorization", tc.header)
			}
			p, err := v.Authenticate(r)
			if tc.ok {
				if err != nil || p.Subject != "user-1" || !p.HasScope("admin") {
					t.Fatalf("Authenticate = %+v, %v", p, err)
				}
				return
			}
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Authenticate error = %v, want ErrUnauthenticated", err)
			}
		})
	}
}

func TestAPIGatewayClaims(t *testing.T) {
	// GIVEN a request carrying the authorizer's verified claims
	rc := events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "GET", Path: "/api/onlyfans/messages/status"}, Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
		JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "user-2", "scope": "admin"}},
	}}
	var accessor core.RequestAccessorV2
	r, err := accessor.EventToRequestWithContext(context.Background(), events.APIGatewayV2HTTPRequest{
		RawPath: "/api/onlyfans/messages/status", RequestContext: rc,
	})
	if err != nil {
		t.Fatal(err)
	}
	// THEN the principal is the token subject with its scopes
	p, err := APIGatewayClaims{}.Authenticate(r)
	if err != nil || p.Subject != "user-2" || !p.HasScope("admin") {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	// AND a request without claims is refused
	if _, err := (APIGatewayClaims{}).Authenticate(httptest.NewRequest("GET", "/", nil)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("no claims: %v", err)
	}
}
