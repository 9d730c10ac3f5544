package infra

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/huntaze/message-pipeline/internal/ratelimit"
	"github.com/huntaze/message-pipeline/scraper/onlyfans/profiles"
)

// DefaultEnvironment is the environment `cdk synth` and `cdk deploy` use
// without `-c env=NAME`.
const DefaultEnvironment = "dev"

// DefaultRegion is where the system runs unless an environment says otherwise
// (seed 000, R1.4).
const DefaultRegion = "us-east-1"

// Environment is the typed configuration of one deployment.
type Environment struct {
	// Name is dev, staging or prod; it is part of stack and resource names.
	Name string
	// Account is the AWS account id the environment deploys to. staging and
	// prod must pin theirs (ValidateEnvironments): `cdk deploy` then refuses
	// credentials of any other account. Empty (dev only) means the account
	// of the credentials `cdk` runs with (CDK_DEFAULT_ACCOUNT).
	Account string
	Region  string
	// AvailabilityZones of the created VPC: named, so that a stack pinned to
	// an account needs no AZ lookup (no AWS call) at synth.
	AvailabilityZones []string

	// VPCID imports an existing VPC (needs an account and `cdk` lookups);
	// empty creates one.
	VPCID string
	// NATGateways in the created VPC (the scraper and the limiter need the
	// internet: OnlyFans, and AWS APIs without endpoints).
	NATGateways int

	// Cache sizing; MultiAZ adds a replica with automatic failover.
	CacheNodeType string
	MultiAZ       bool

	// AlertTopicExists imports the huntaze-cost-alerts topic by name
	// instead of creating it.
	AlertTopicExists bool
	// Alerts are the people every alarm of the environment reaches.
	Alerts []AlertSubscription

	// JWT issuer and audience the HTTP API authorizer trusts: each
	// environment its own pair, so a token minted for one is refused by
	// every other (ValidateEnvironments). docs/api.md, "Tokens".
	JWTIssuer   string
	JWTAudience string

	// API is the fair share of the HTTP API: per-caller limit and the
	// stage sized for that many callers (throttle.go).
	API APIShare

	// SendLimit is the per-creator limit at the site (OnlyFans': 10 per
	// rolling 60 s), rendered to the rate limiter, the scraper's send gate
	// and the API's backpressure from this one value.
	SendLimit ratelimit.Limit

	// LimiterMaxConcurrency caps concurrent rate limiter invocations.
	LimiterMaxConcurrency int
	// ScraperMinTasks..ScraperMaxTasks bound the scraper service (seed 003 R3).
	ScraperMinTasks, ScraperMaxTasks int
	// ScraperProfile is the built-in site profile the scraper task runs
	// with (SITE_PROFILE; scraper/onlyfans/profiles): "onlyfans", a
	// document per chat and the scraper's default (so not rendered), or
	// "onlyfans-spa", chats switched inside the web app (docs/scraper.md,
	// "Choosing a profile").
	ScraperProfile string
	// ScraperOnDemandBase tasks always run on FARGATE, the rest on Spot
	// (the On-Demand fallback service covers what Spot cannot place).
	ScraperOnDemandBase int
	// LogRetentionDays of every log group.
	LogRetentionDays int
}

// AlertTopicName is the SNS topic of the seed (003 R5.5).
const AlertTopicName = "huntaze-cost-alerts"

// The accounts staging and prod deploy to (one account each; dev uses the
// credentials' account). These are AWS's documentation example ids until
// the team writes its real ones here (README, "Deploying per environment"):
// synth needs no AWS access either way, and `cdk deploy` refuses
// credentials of any other account, so a wrong id fails safe.
const (
	StagingAccount = "111122223333"
	ProdAccount    = "444455556666"
)

func baseEnvironment(name string) Environment {
	return Environment{
		Name: name, Region: DefaultRegion, AvailabilityZones: []string{DefaultRegion + "a", DefaultRegion + "b"},
		NATGateways: 1, CacheNodeType: "cache.t4g.micro",
		// The identity provider's tenant of this environment, and the API
		// identifier registered there for it.
		JWTIssuer: "https://auth." + name + ".huntaze.com/", JWTAudience: "huntaze-api-" + name,
		// 10 requests per second per caller (a request carries up to 10
		// messages; a creator can send 10 a minute): 20 callers at their
		// limit at once, 200 req/s, burst 400; prod 100 callers.
		API:                   APIShare{CallerRequests: 10, CallerWindow: time.Second, Callers: 20, StatusRate: 10, ReplayRate: 1},
		SendLimit:             ratelimit.DefaultLimit(),
		LimiterMaxConcurrency: 10, ScraperMinTasks: 1, ScraperMaxTasks: 10, ScraperOnDemandBase: 0,
		// The document per chat until the single-page app's identity marker
		// is checked against the live site (docs/scraper.md: make e2e-real).
		ScraperProfile:   profiles.Default,
		LogRetentionDays: 30,
	}
}

var environments = func() map[string]Environment {
	dev := baseEnvironment("dev")
	staging := baseEnvironment("staging")
	staging.Account = StagingAccount
	prod := baseEnvironment("prod")
	prod.Account = ProdAccount
	// prod's pair is its own tenant and audience (baseEnvironment:
	// https://auth.prod.huntaze.com/ + huntaze-api-prod), never the
	// https://auth.huntaze.com/ + huntaze-api every environment trusted
	// before issue 24: dev's and staging's clients and test users were given
	// tokens for that pair, so no environment may trust it again
	// (formerSharedTrust).
	prod.NATGateways, prod.CacheNodeType, prod.MultiAZ = 2, "cache.r7g.large", true
	prod.API.Callers = 100
	prod.AlertTopicExists, prod.ScraperOnDemandBase, prod.LogRetentionDays = true, 1, 90
	dev.Alerts = []AlertSubscription{{Kind: AlertEmail, Endpoint: "alerts-dev@huntaze.com"}}
	staging.Alerts = []AlertSubscription{{Kind: AlertEmail, Endpoint: "alerts-staging@huntaze.com"}}
	prod.Alerts = []AlertSubscription{{Kind: AlertEmail, Endpoint: "oncall@huntaze.com"}}
	return map[string]Environment{"dev": dev, "staging": staging, "prod": prod}
}()

// EnvironmentNames lists the known environments, sorted.
func EnvironmentNames() []string {
	names := make([]string, 0, len(environments))
	for n := range environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupEnvironment returns the configuration of an environment by name;
// the account falls back to CDK_DEFAULT_ACCOUNT when the config has none.
func LookupEnvironment(name string) (Environment, error) {
	if name == "" {
		name = DefaultEnvironment
	}
	if err := ValidateEnvironments(environments); err != nil {
		return Environment{}, err
	}
	env, ok := environments[name]
	if !ok {
		return Environment{}, fmt.Errorf("unknown environment %q (known: %v); pass -c env=NAME", name, EnvironmentNames())
	}
	if env.Account == "" {
		env.Account = os.Getenv("CDK_DEFAULT_ACCOUNT")
		// An unpinned environment (dev) follows the credentials: with a
		// pinned environment's credentials it would put its stack (its own,
		// laxer trust and sizing) into that environment's account.
		for _, other := range EnvironmentNames() {
			if o := environments[other]; other != name && o.Account != "" && o.Account == env.Account {
				return Environment{}, fmt.Errorf("environment %s would deploy into account %s, which is %s's (pinned in infra/config.go): use credentials of another account for %s", name, env.Account, other, name)
			}
		}
	}
	return env, nil
}

// StackName names a stack of an environment: "Huntaze-<Env>-<Part>".
func (e Environment) StackName(part string) string {
	return fmt.Sprintf("Huntaze-%s-%s", e.Name, part)
}

// Alert subscriptions (issue 26): who an environment's alarms reach. The
// addresses above are the team's distribution lists; change them here.

// AlertKind is how an alert reaches a person.
type AlertKind string

const (
	// AlertEmail: an email address (SNS sends a confirmation mail first).
	AlertEmail AlertKind = "email"
	// AlertHTTPS: an https:// endpoint, such as a pager's SNS webhook (it
	// must confirm the subscription).
	AlertHTTPS AlertKind = "https"
	// AlertSlack: a Slack channel through AWS Chatbot. The stack creates the
	// channel configuration (a configuration lists its topics, so one made
	// elsewhere cannot be given this topic by ARN); the Slack workspace must
	// have been authorized once in the AWS Chatbot console.
	AlertSlack AlertKind = "slack"
)

// AlertSubscription is one recipient of an environment's alerts.
type AlertSubscription struct {
	Kind AlertKind
	// Endpoint is the email address (AlertEmail) or the URL (AlertHTTPS).
	Endpoint string
	// SlackWorkspaceID (T…) and SlackChannelID (C… or G…) for AlertSlack.
	SlackWorkspaceID, SlackChannelID string
}

var (
	emailAddress   = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)
	slackWorkspace = regexp.MustCompile(`^T[A-Z0-9]{2,}$`)
	slackChannel   = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
)

// Validate says what is wrong with a subscription, naming the field.
func (s AlertSubscription) Validate() error {
	switch s.Kind {
	case AlertEmail:
		if !emailAddress.MatchString(s.Endpoint) {
			return fmt.Errorf("alert subscription %s: Endpoint %q is not an email address", s.Kind, s.Endpoint)
		}
	case AlertHTTPS:
		if u, err := url.Parse(s.Endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("alert subscription %s: Endpoint %q is not an https:// URL", s.Kind, s.Endpoint)
		}
	case AlertSlack:
		if !slackWorkspace.MatchString(s.SlackWorkspaceID) {
			return fmt.Errorf("alert subscription %s: SlackWorkspaceID %q is not a Slack workspace id (T…)", s.Kind, s.SlackWorkspaceID)
		}
		if !slackChannel.MatchString(s.SlackChannelID) {
			return fmt.Errorf("alert subscription %s: SlackChannelID %q is not a Slack channel id (C… or G…)", s.Kind, s.SlackChannelID)
		}
	default:
		return fmt.Errorf("alert subscription: Kind %q is not one of email, https, slack", s.Kind)
	}
	return nil
}

// formerSharedTrust is the issuer+audience every environment trusted
// before issue 24; tokens for it were minted for dev and staging.
var formerSharedTrust = struct{ issuer, audience string }{"https://auth.huntaze.com/", "huntaze-api"}

// normalIssuer is the identity of an issuer URL: scheme and host in lower
// case, the default port dropped, no trailing slash (RFC 3986 equivalence;
// identity providers differ in whether `iss` ends with "/").
func normalIssuer(issuer string) string {
	u, err := url.Parse(strings.TrimSpace(issuer))
	if err != nil {
		return strings.ToLower(strings.TrimRight(issuer, "/"))
	}
	host := strings.ToLower(u.Hostname())
	if p := u.Port(); p != "" && !(p == "443" && strings.EqualFold(u.Scheme, "https")) {
		host += ":" + p
	}
	return strings.ToLower(u.Scheme) + "://" + host + strings.TrimRight(u.EscapedPath(), "/")
}

// accountsRequired are the environments that must pin their account.
var accountsRequired = []string{"staging", "prod"}

var accountID = regexp.MustCompile(`^\d{12}$`)

// ValidateEnvironments checks the trust between environments before any
// stack is built (synth fails with its message): every environment has an
// https issuer and an audience, no two share an issuer (compared after
// normalIssuer; a tenant that mints for one would mint for the other), none
// trusts the pair all shared before issue 24, staging and prod pin
// their own account, and no account hosts two pinned environments.
func ValidateEnvironments(envs map[string]Environment) error {
	var errs []error
	names := make([]string, 0, len(envs))
	for n := range envs {
		names = append(names, n)
	}
	sort.Strings(names)
	trusted := map[string]string{} // issuer+audience -> environment
	accounts := map[string]string{}
	for _, n := range names {
		e := envs[n]
		if u, err := url.Parse(e.JWTIssuer); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("environment %s: JWTIssuer %q must be an https URL (the OIDC issuer)", n, e.JWTIssuer))
		}
		if strings.TrimSpace(e.JWTAudience) == "" {
			errs = append(errs, fmt.Errorf("environment %s: JWTAudience is empty", n))
		}
		// One issuer (identity-provider tenant) per environment, compared as
		// the tenant it names, not as a string: whoever obtains tokens from
		// a tenant for one environment can ask it for another's audience.
		issuer := normalIssuer(e.JWTIssuer)
		if other, ok := trusted[issuer]; ok {
			errs = append(errs, fmt.Errorf("environments %s and %s trust the same issuer (%q, %q): whoever gets a token from it for one can get one for the other's audience; give each environment its own issuer (infra/config.go)", other, n, envs[other].JWTIssuer, e.JWTIssuer))
		}
		trusted[issuer] = n
		if issuer == normalIssuer(formerSharedTrust.issuer) && e.JWTAudience == formerSharedTrust.audience {
			errs = append(errs, fmt.Errorf("environment %s trusts %s + %s, the pair every environment trusted before issue 24 (dev's and staging's clients hold tokens for it); give it a pair of its own", n, e.JWTIssuer, e.JWTAudience))
		}
		if _, err := profiles.Lookup(e.ScraperProfile); err != nil {
			errs = append(errs, fmt.Errorf("environment %s: ScraperProfile: %w", n, err))
		}
		if e.Account != "" {
			if !accountID.MatchString(e.Account) {
				errs = append(errs, fmt.Errorf("environment %s: Account %q is not a 12-digit AWS account id", n, e.Account))
			}
			if other, ok := accounts[e.Account]; ok {
				errs = append(errs, fmt.Errorf("environments %s and %s are pinned to the same account %s; each needs its own", other, n, e.Account))
			}
			accounts[e.Account] = n
		}
	}
	for _, n := range accountsRequired {
		if e, ok := envs[n]; ok && e.Account == "" {
			errs = append(errs, fmt.Errorf("environment %s has no Account: it would deploy into whatever account the credentials point to; set Account in infra/config.go", n))
		}
	}
	return errors.Join(errs...)
}
