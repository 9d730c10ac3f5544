// Package auth turns a request into the user it acts for. In AWS the HTTP
// API's JWT authorizer has verified the token and passes its claims; locally
// the same token is verified here (HMAC key or JWKS) with golang-jwt.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/golang-jwt/jwt/v5"
)

// Principal is an authenticated caller.
type Principal struct {
	Subject string
	Scopes  []string
	// Creators are the creator ids the token may send as, besides itself
	// (the grant claim, default name DefaultCreatorsClaim).
	Creators []string
}

// DefaultCreatorsClaim names the claim that lists the creator ids a token
// may send as.
const DefaultCreatorsClaim = "creators"

// HasScope reports whether the token grants scope.
func (p Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// ErrUnauthenticated wraps every reason a request is not authenticated.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticator authenticates a request.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// JWTVerifier verifies a bearer JWT itself.
type JWTVerifier struct {
	// CreatorsClaim names the grant claim (DefaultCreatorsClaim when empty).
	CreatorsClaim string

	keyfunc  jwt.Keyfunc
	methods  []string
	issuer   string
	audience string
	now      func() time.Time
}

// NewHMACVerifier verifies HS256 tokens signed with secret.
func NewHMACVerifier(secret []byte, issuer, audience string, now func() time.Time) *JWTVerifier {
	return &JWTVerifier{
		keyfunc: func(*jwt.Token) (any, error) { return secret, nil },
		methods: []string{jwt.SigningMethodHS256.Alg()}, issuer: issuer, audience: audience, now: now,
	}
}

// NewJWKSVerifier verifies RS256/ES256 tokens against a JWKS URL (the same
// issuer the HTTP API authorizer trusts). Keys are fetched and refreshed in
// the background until ctx ends.
func NewJWKSVerifier(ctx context.Context, jwksURL, issuer, audience string, now func() time.Time) (*JWTVerifier, error) {
	k, err := keyfunc.NewDefaultCtx(ctx, []string{jwksURL})
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", jwksURL, err)
	}
	return &JWTVerifier{keyfunc: k.Keyfunc, methods: []string{"RS256", "ES256"}, issuer: issuer, audience: audience, now: now}, nil
}

// Authenticate implements Authenticator.
func (v *JWTVerifier) Authenticate(r *http.Request) (Principal, error) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		return Principal{}, fmt.Errorf("%w: missing bearer token", ErrUnauthenticated)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(v.methods), jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.now)}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(strings.TrimSpace(raw), claims, v.keyfunc, opts...); err != nil {
		return Principal{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	sub, _ := claims.GetSubject()
	if sub == "" {
		return Principal{}, fmt.Errorf("%w: token has no subject", ErrUnauthenticated)
	}
	return Principal{Subject: sub, Scopes: scopes(claims["scope"], claims["scp"]), Creators: creators(claims[claimName(v.CreatorsClaim)])}, nil
}

func claimName(n string) string {
	if n == "" {
		return DefaultCreatorsClaim
	}
	return n
}

// APIGatewayClaims trusts the claims the HTTP API JWT authorizer verified
// and put in the request context.
type APIGatewayClaims struct {
	// CreatorsClaim names the grant claim (DefaultCreatorsClaim when empty).
	CreatorsClaim string
}

// Authenticate implements Authenticator.
func (a APIGatewayClaims) Authenticate(r *http.Request) (Principal, error) {
	rc, ok := core.GetAPIGatewayV2ContextFromContext(r.Context())
	if !ok || rc.Authorizer == nil || rc.Authorizer.JWT == nil {
		return Principal{}, fmt.Errorf("%w: no authorizer claims (is the route behind the JWT authorizer?)", ErrUnauthenticated)
	}
	c := rc.Authorizer.JWT.Claims
	if c["sub"] == "" {
		return Principal{}, fmt.Errorf("%w: token has no subject", ErrUnauthenticated)
	}
	return Principal{Subject: c["sub"], Scopes: append(scopes(c["scope"], nil), rc.Authorizer.JWT.Scopes...), Creators: creators(c[claimName(a.CreatorsClaim)])}, nil
}

// scopes reads OAuth scopes from a space-separated "scope" string or an
// "scp" list.
func scopes(scope, scp any) []string {
	var out []string
	if s, ok := scope.(string); ok {
		out = append(out, strings.Fields(s)...)
	}
	switch v := scp.(type) {
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
	case string:
		out = append(out, strings.Fields(v)...)
	}
	return out
}

// creators reads the grant claim: a JSON array of strings in a verified
// token; in API Gateway's authorizer context every claim is a string, and
// an array arrives as "[a b c]" (or as JSON text, or space/comma separated).
func creators(v any) []string {
	var out []string
	switch c := v.(type) {
	case []any:
		for _, x := range c {
			if s, ok := x.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	case string:
		c = strings.TrimSpace(c)
		var list []string
		if strings.HasPrefix(c, "[") && json.Unmarshal([]byte(c), &list) == nil {
			return list
		}
		c = strings.TrimSuffix(strings.TrimPrefix(c, "["), "]")
		out = strings.FieldsFunc(c, func(r rune) bool { return r == ' ' || r == ',' })
	}
	return out
}
