package infra

import (
	"errors"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/huntaze/message-pipeline/internal/auth"
)

func TestValidateEnvironments_EachEnvironmentTrustsOnlyItsOwnTokensAndPinsItsAccount(t *testing.T) {
	// GIVEN the configured environments THEN they pass
	if err := ValidateEnvironments(environments); err != nil {
		t.Fatalf("configured environments: %v", err)
	}
	// AND each broken variant fails with a message naming what to fix
	for what, tc := range map[string]struct {
		change func(map[string]Environment)
		want   string
	}{
		"dev and prod share issuer+audience": {func(m map[string]Environment) {
			d := m["dev"]
			d.JWTIssuer, d.JWTAudience = m["prod"].JWTIssuer, m["prod"].JWTAudience
			m["dev"] = d
		}, "environments dev and prod trust the same issuer"},
		"prod has no account": {func(m map[string]Environment) {
			p := m["prod"]
			p.Account = ""
			m["prod"] = p
		}, "environment prod has no Account"},
		"staging has no account": {func(m map[string]Environment) {
			s := m["staging"]
			s.Account = ""
			m["staging"] = s
		}, "environment staging has no Account"},
		"staging and prod share an account": {func(m map[string]Environment) {
			s := m["staging"]
			s.Account = m["prod"].Account
			m["staging"] = s
		}, "pinned to the same account"},
		"an issuer that is not https": {func(m map[string]Environment) {
			s := m["staging"]
			s.JWTIssuer = "http://auth.staging.huntaze.com/"
			m["staging"] = s
		}, "must be an https URL"},
	} {
		envs := maps.Clone(environments)
		tc.change(envs)
		if err := ValidateEnvironments(envs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", what, err, tc.want)
		}
	}
}

func TestLookupEnvironment_SynthStopsOnATrustError(t *testing.T) {
	// GIVEN a configuration where prod lost its account
	saved := environments
	defer func() { environments = saved }()
	environments = maps.Clone(saved)
	p := environments["prod"]
	p.Account = ""
	environments["prod"] = p
	// THEN looking up any environment (what cdkapp does before building a
	// stack; it prints the error and exits 2) fails with the reason
	if _, err := LookupEnvironment("dev"); err == nil || !strings.Contains(err.Error(), "environment prod has no Account") {
		t.Fatalf("LookupEnvironment = %v", err)
	}
}

func TestStagingAndProdStacksArePinnedToTheirAccount(t *testing.T) {
	for env, account := range map[string]string{"staging": StagingAccount, "prod": ProdAccount} {
		s := system(t, env)
		for _, st := range []interface{ Account() *string }{s.Messaging.Stack, s.Pipeline.Stack} {
			if got := *st.Account(); got != account {
				t.Errorf("%s stack account %q, want %s", env, got, account)
			}
		}
	}
}

// The HTTP API's JWT authorizer accepts a token whose iss equals the
// configured issuer and whose aud holds one of the configured audiences
// (signature and expiry checked against the issuer's JWKS). The local
// verifier applies the same checks, so each environment's synthesized
// authorizer configuration is checked with it; one signing key for all
// environments isolates the refusal to issuer and audience (in AWS the keys
// differ too).
func TestAuthorizer_ATokenForDevIsRefusedByStagingAndProd(t *testing.T) {
	key := []byte("one-key-for-every-environment-32b!!")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	// GIVEN each environment's authorizer configuration, from its template
	type trust struct{ issuer, audience string }
	configs := map[string]trust{}
	for _, env := range EnvironmentNames() {
		a := only(t, resources(t, system(t, env).Pipeline.Stack, "AWS::ApiGatewayV2::Authorizer"), "authorizer")
		jc := a["JwtConfiguration"].(map[string]any)
		auds := jc["Audience"].([]any)
		if a["AuthorizerType"] != "JWT" || len(auds) != 1 {
			t.Fatalf("%s authorizer %v: want JWT with one audience", env, a)
		}
		configs[env] = trust{jc["Issuer"].(string), auds[0].(string)}
	}
	for minted, tc := range configs {
		// WHEN a token minted for one environment (a creator grant included)
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "team-member-1", "iss": tc.issuer, "aud": tc.audience, "exp": now.Add(time.Hour).Unix(),
			"creators": []string{"creator-a"},
		}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		for env, cfg := range configs {
			r := httptest.NewRequest("POST", "/api/onlyfans/messages/send", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			p, err := auth.NewHMACVerifier(key, cfg.issuer, cfg.audience, func() time.Time { return now }).Authenticate(r)
			// THEN only its own environment accepts it
			if env == minted {
				if err != nil || p.Subject != "team-member-1" || len(p.Creators) != 1 {
					t.Errorf("a %s token at %s: %+v, %v", minted, env, p, err)
				}
			} else if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Errorf("a %s token was accepted by %s's authorizer configuration (%+v)", minted, env, cfg)
			}
		}
	}
}

// Review of issue 24: one identity-provider tenant behind two environments.
// The pair check compares issuer+audience as exact strings, so it passes
// when two environments trust the same issuer (spelt with or without the
// trailing slash, or in another case of the host) with another audience:
// whoever can obtain tokens from that tenant for one environment (dev's test
// users and clients, their creators grants) asks the same tenant for the
// other's audience. Each environment must trust its own issuer.
func TestValidateEnvironments_TwoEnvironmentsNeverShareAnIssuer(t *testing.T) {
	for what, issuer := range map[string]string{
		"prod's issuer as written":      environments["prod"].JWTIssuer,
		"without the trailing slash":    strings.TrimSuffix(environments["prod"].JWTIssuer, "/"),
		"the host in another case":      strings.ToUpper(environments["prod"].JWTIssuer[:len("https://auth")]) + environments["prod"].JWTIssuer[len("https://auth"):],
		"no slash, prod's audience too": strings.TrimSuffix(environments["prod"].JWTIssuer, "/"),
	} {
		// GIVEN dev trusting prod's issuer
		envs := maps.Clone(environments)
		d := envs["dev"]
		d.JWTIssuer = issuer
		if what == "no slash, prod's audience too" {
			d.JWTAudience = envs["prod"].JWTAudience
		}
		envs["dev"] = d
		// WHEN the environments are validated THEN synth stops, naming both
		if err := ValidateEnvironments(envs); err == nil || !strings.Contains(err.Error(), "dev") || !strings.Contains(err.Error(), "prod") {
			t.Errorf("%s (dev issuer %q, audience %q): ValidateEnvironments = %v, want an error naming dev and prod", what, d.JWTIssuer, d.JWTAudience, err)
		}
	}
}

// Review of issue 24: until issue 24 every environment's authorizer trusted
// this one pair, so dev's and staging's apps, test users and machine clients
// were given tokens for it. Keeping it as prod's pair keeps all of those
// able to mint tokens prod accepts: the split must give prod a pair no other
// environment ever trusted.
func TestValidateEnvironments_NoEnvironmentKeepsThePairAllOfThemTrustedBefore(t *testing.T) {
	const sharedIssuer, sharedAudience = "https://auth.huntaze.com/", "huntaze-api"
	// GIVEN the configured environments
	for _, name := range EnvironmentNames() {
		e := environments[name]
		// THEN none trusts the formerly shared issuer+audience pair
		if strings.TrimSuffix(strings.ToLower(e.JWTIssuer), "/") == strings.TrimSuffix(sharedIssuer, "/") && e.JWTAudience == sharedAudience {
			t.Errorf("%s still trusts %s / %s, the pair dev and staging tokens were minted for before issue 24", name, e.JWTIssuer, e.JWTAudience)
		}
	}
}

// Review of issue 24: dev takes whatever account the credentials point to,
// including staging's or prod's: `cdk deploy -c env=dev` with prod's
// credentials puts dev's stack (dev's issuer and audience, dev's sizing) into
// prod's account, and nothing at synth says no.
func TestLookupEnvironment_DevNeverLandsInAPinnedEnvironmentsAccount(t *testing.T) {
	for _, account := range []string{StagingAccount, ProdAccount} {
		// GIVEN credentials of a pinned environment's account
		t.Setenv("CDK_DEFAULT_ACCOUNT", account)
		// WHEN dev is looked up (what synth and deploy of env=dev do)
		env, err := LookupEnvironment("dev")
		// THEN it is refused
		if err == nil {
			t.Errorf("dev with credentials of account %s: accepted, it would deploy there (Account %q)", account, env.Account)
		}
	}
}
