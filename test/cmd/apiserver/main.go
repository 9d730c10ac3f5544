// Command apiserver runs the real send API (functions/api/setup, the
// production wiring) against fauxqs and dynalite on 127.0.0.1, for the
// TypeScript client's tests. It prints one JSON line with the API's URL and
// signed tokens, and stops when its standard input closes. With
// -unconfigured it runs the API as a deployment without queues or tables
// (seed 000 R1.2: sends answer 503, sending disabled).
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/huntaze/message-pipeline/devstack/emulator"
	api "github.com/huntaze/message-pipeline/functions/api/handler"
	"github.com/huntaze/message-pipeline/functions/api/setup"
	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/test/harness"
)

const (
	secret   = "apiserver-secret-apiserver-secret!"
	issuer   = "https://apiserver.local/"
	audience = "huntaze-api"
)

func main() {
	callerRequests := flag.Int("caller-requests", 50, "requests per caller per -caller-window")
	callerWindow := flag.Duration("caller-window", time.Second, "window of the per-caller limit")
	unconfigured := flag.Bool("unconfigured", false, "no queues or tables: sending disabled")
	jwksURL := flag.String("jwks-url", "", "verify ES256/RS256 tokens against this JWKS (as the HTTP API's authorizer does) instead of the HMAC secret; the printed tokens are then refused")
	jwksIssuer := flag.String("issuer", issuer, "the issuer tokens must name")
	flag.Parse()
	r := &harness.Runner{}
	defer r.Stop()

	env := map[string]string{
		"AUTH_MODE": "jwt", "JWT_HMAC_SECRET": secret, "JWT_ISSUER": *jwksIssuer, "JWT_AUDIENCE": audience,
		"CALLER_REQUESTS": strconv.Itoa(*callerRequests), "CALLER_WINDOW": callerWindow.String(),
	}
	if *jwksURL != "" {
		delete(env, "JWT_HMAC_SECRET")
		env["JWT_JWKS_URL"] = *jwksURL
	}
	endpoints := emulator.Endpoints{}
	if !*unconfigured {
		endpoints = startAWS(r, env)
	}
	ctx := context.Background()
	s, err := setup.Load(env)
	if err != nil {
		r.Fatalf("%v", err)
	}
	cfg, deps, err := setup.Build(ctx, s, emulator.LocalAWS(endpoints), slog.New(slog.NewJSONHandler(io.Discard, nil)), io.Discard)
	if err != nil {
		r.Fatalf("%v", err)
	}
	srv, err := api.New(cfg, deps)
	if err != nil {
		r.Fatalf("%v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Fatalf("%v", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{
		"url": "http://" + ln.Addr().String(),
		"tokens": map[string]string{
			"user": token("user-a", "", "creator-a"),
			// the same user's next token, as a rotating provider returns it
			"userRotated": token("user-a", "", "creator-a"),
			"other":       token("user-b", "", "creator-b"),
			"ops":         token("ops-1", "ops admin"),
		},
	})
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes our stdin
}

// startAWS starts the queues and tables the API sends to, names them in
// env, and returns their endpoints.
func startAWS(r *harness.Runner, env map[string]string) emulator.Endpoints {
	f := harness.StartFauxqs(r)
	d := harness.StartDynalite(r)
	sys := f.CreateQueues(r, "dev")
	for _, tbl := range []struct{ name, key string }{{"fallback", fallback.KeyAttribute}, {"idempotency", idempotency.KeyAttribute}} {
		d.CreateTable(r, tbl.name, tbl.key)
	}
	maps.Copy(env, map[string]string{
		"INTAKE_QUEUE_URL": sys.RateLimiter.URL, "INTAKE_DLQ_URL": sys.RateLimiter.DLQURL,
		"WORKFLOWS_QUEUE_URL": sys.Workflows.URL, "WORKFLOWS_DLQ_URL": sys.Workflows.DLQURL,
		"FALLBACK_TABLE": "fallback", "IDEMPOTENCY_TABLE": "idempotency",
	})
	return emulator.Endpoints{"SQS": f.Endpoint, "DynamoDB": d.Endpoint}
}

// token is an HMAC-signed caller token the API accepts (with the default
// HMAC secret).
func token(sub, scope string, creators ...string) string {
	t, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "iss": issuer, "aud": audience,
		"exp": time.Now().Add(time.Hour).Unix(), "scope": scope, "creators": creators, "jti": rand.Text()}).SignedString([]byte(secret))
	return t
}
