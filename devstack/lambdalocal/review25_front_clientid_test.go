package lambdalocal_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestReview25FrontAcceptsAnAudienceInClientIDAsAPIGatewayDoes(t *testing.T) {
	// GIVEN the front, and an access token with no aud whose client_id is
	// the configured audience (API Gateway checks "aud or client_id")
	f, fn, key := startFront(t, okHandler())
	token := sign(t, key, jwt.MapClaims{"sub": "user-1", "iss": issuer, "client_id": audience,
		"exp": time.Now().Add(time.Hour).Unix(), "token_use": "access"})

	// WHEN it is sent
	resp, body := post(t, f.URL+"/send", token, `{}`)

	// THEN it reaches the function, as through the HTTP API
	if resp.StatusCode != http.StatusAccepted || len(fn.events) != 1 {
		t.Fatalf("a token with client_id=%s and no aud got %d %q; API Gateway accepts it", audience, resp.StatusCode, body)
	}
}
