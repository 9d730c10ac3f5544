package lambdalocal

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// JWTAuthorizer is an HTTP API JWT authorizer's configuration: the
// issuer and audiences it trusts and where the issuer's keys are.
type JWTAuthorizer struct {
	Issuer    string
	Audiences []string
	// JWKSURL is the issuer's key set (in AWS, the jwks_uri of its OpenID
	// configuration).
	JWKSURL string
}

// HTTPAPIMaxBody is API Gateway HTTP API's request body limit (10 MB).
const HTTPAPIMaxBody = 10 << 20

// FrontConfig is an HTTP API in front of one function (payload format 2.0).
type FrontConfig struct {
	// Routes are the route keys ("POST /api/onlyfans/messages/send"); any
	// other request is 404, as in the HTTP API.
	Routes     []string
	Authorizer JWTAuthorizer
	// MaxBody bounds a request body (the HTTP API's is HTTPAPIMaxBody);
	// it must be positive.
	MaxBody int64
	Log     *slog.Logger
}

// Front is a running HTTP API.
type Front struct {
	URL    string
	cfg    FrontConfig
	fn     Invoker
	keys   keyfunc.Keyfunc
	srv    *http.Server
	cancel context.CancelFunc
}

// StartFront listens on a free 127.0.0.1 port and serves cfg's routes by
// invoking fn, as the HTTP API does: the authorizer verifies the bearer
// JWT (signature against the JWKS, issuer, audience, expiry) and answers
// 401 itself; a verified request becomes an APIGatewayV2HTTPRequest with
// the token's claims as API Gateway renders them (every claim a string,
// an array as "[a b]"); the function's response is mapped back, and a
// function error is a 500.
func StartFront(fn Invoker, cfg FrontConfig) (*Front, error) {
	ctx, cancel := context.WithCancel(context.Background())
	keys, err := keyfunc.NewDefaultCtx(ctx, []string{cfg.Authorizer.JWKSURL})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("jwks %s: %w", cfg.Authorizer.JWKSURL, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, err
	}
	if cfg.MaxBody <= 0 {
		cancel()
		_ = ln.Close()
		return nil, fmt.Errorf("front: MaxBody %d must be positive (the HTTP API's is HTTPAPIMaxBody)", cfg.MaxBody)
	}
	f := &Front{URL: "http://" + ln.Addr().String(), cfg: cfg, fn: fn, keys: keys, cancel: cancel}
	f.srv = &http.Server{Handler: f, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// Close stops the front.
func (f *Front) Close() error {
	f.cancel()
	return f.srv.Close()
}

func message(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"message":%q}`, msg)
}

// ServeHTTP implements http.Handler.
func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	routeKey := r.Method + " " + r.URL.Path
	if !slices.Contains(f.cfg.Routes, routeKey) {
		message(w, http.StatusNotFound, "Not Found")
		return
	}
	claims, err := f.verify(r)
	if err != nil {
		f.cfg.Log.Info("authorizer refused the token", "route", routeKey, "error", err)
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		message(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, f.cfg.MaxBody))
	if err != nil {
		message(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	payload, err := json.Marshal(Request(r, routeKey, body, claims))
	if err != nil {
		message(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	out, err := f.fn.Invoke(r.Context(), payload)
	if err != nil {
		f.cfg.Log.Error("integration failed", "route", routeKey, "error", err)
		message(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	writeResponse(w, out)
}

// verify does what the JWT authorizer does with the Authorization header
// and returns the token's claims.
func (f *Front) verify(r *http.Request) (jwt.MapClaims, error) {
	raw := strings.TrimSpace(r.Header.Get("Authorization"))
	if raw == "" {
		return nil, errors.New("no Authorization header")
	}
	if t, ok := strings.CutPrefix(raw, "Bearer "); ok {
		raw = strings.TrimSpace(t)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, f.keys.Keyfunc,
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithIssuer(f.cfg.Authorizer.Issuer))
	if err != nil {
		return nil, err
	}
	// API Gateway matches the audience in aud, or in client_id when the
	// token has no aud (Cognito access tokens).
	aud, _ := claims.GetAudience()
	if len(aud) == 0 {
		if id, ok := claims["client_id"].(string); ok {
			aud = jwt.ClaimStrings{id}
		}
	}
	for _, a := range f.cfg.Authorizer.Audiences {
		if slices.Contains(aud, a) {
			return claims, nil
		}
	}
	return nil, fmt.Errorf("audience %v is not one of %v", aud, f.cfg.Authorizer.Audiences)
}

// Request is the payload format 2.0 event of r for a verified token.
func Request(r *http.Request, routeKey string, body []byte, claims jwt.MapClaims) events.APIGatewayV2HTTPRequest {
	now := time.Now().UTC()
	headers := map[string]string{}
	for k, v := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	host, port, _ := net.SplitHostPort(r.Host)
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	headers["host"] = r.Host
	headers["x-forwarded-for"] = sourceIP
	headers["x-forwarded-proto"] = "http"
	headers["x-forwarded-port"] = port
	headers["content-length"] = strconv.Itoa(len(body))
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = map[string]string{}
		for k, v := range q {
			query[k] = strings.Join(v, ",")
		}
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	rendered := make(map[string]string, len(claims))
	for k, v := range claims {
		rendered[k] = RenderClaim(v)
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery,
		Cookies: cookies, Headers: headers, QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey: routeKey, AccountID: "000000000000", Stage: "$default", RequestID: uuid.NewString(),
			APIID: "local", DomainName: r.Host, DomainPrefix: host,
			Time: now.Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent(),
			},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: rendered},
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	return ev
}

// RenderClaim renders a claim's value as the JWT authorizer puts it in
// the request context: a string as is, a number without exponent, an
// array as its elements in brackets separated by spaces ("[a b]").
func RenderClaim(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case float64:
		return strconv.FormatFloat(c, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(c)
	case []any:
		parts := make([]string, len(c))
		for i, x := range c {
			parts[i] = RenderClaim(x)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case nil:
		return ""
	default:
		b, _ := json.Marshal(c)
		return string(b)
	}
}

// writeResponse maps a payload format 2.0 response back to HTTP. A
// response that is not one (no statusCode) is, as in the HTTP API, a 200
// whose body is the function's output.
func writeResponse(w http.ResponseWriter, out []byte) {
	var resp events.APIGatewayV2HTTPResponse
	var probe map[string]json.RawMessage
	if json.Unmarshal(out, &probe) != nil || probe["statusCode"] == nil || json.Unmarshal(out, &resp) != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			message(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		body = b
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}
