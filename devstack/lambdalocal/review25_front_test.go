package lambdalocal_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The HTTP API JWT authorizer checks iat ("must be before the current
// time"), and takes client_id for the audience when a token has no aud
// (Cognito access tokens). The local front must refuse and accept the same
// tokens, or the local run is kinder (or harsher) than what ships.

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
}

func TestReview25FrontRefusesATokenIssuedInTheFuture(t *testing.T) {
	// GIVEN the front, and a token otherwise valid but issued an hour from now
	f, fn, key := startFront(t, okHandler())
	now := time.Now()
	token := sign(t, key, jwt.MapClaims{"sub": "user-1", "iss": issuer, "aud": audience,
		"exp": now.Add(2 * time.Hour).Unix(), "iat": now.Add(time.Hour).Unix()})

	// WHEN it is sent
	resp, body := post(t, f.URL+"/send", token, `{}`)

	// THEN the authorizer refuses it, as API Gateway's does (iat in the future)
	if resp.StatusCode != http.StatusUnauthorized || len(fn.events) != 0 {
		t.Fatalf("a token issued in the future got %d %q and invoked the function %d times; API Gateway answers 401", resp.StatusCode, body, len(fn.events))
	}
}
