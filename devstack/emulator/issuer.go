package emulator

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"time"
)

// JWKS serves an issuer's public key set, as the identity provider that
// the HTTP API's JWT authorizer trusts does (the jwks_uri of its OpenID
// configuration), for a key this machine made.
type JWKS struct {
	URL string
	srv *http.Server
}

// StartJWKS serves key's public half under kid on a free 127.0.0.1 port.
func StartJWKS(key *rsa.PublicKey, kid string) (*JWKS, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	doc, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	j := &JWKS{URL: "http://" + ln.Addr().String() + "/.well-known/jwks.json"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	j.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = j.srv.Serve(ln) }()
	return j, nil
}

// Close stops serving.
func (j *JWKS) Close() error {
	if err := j.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
