package rotator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/huntaze/message-pipeline/internal/metrics"
)

// Metrics of the session health check (EMF, Service=session-health).
const (
	MetricSessionsChecked      = "sessions_checked"
	MetricSessionsRenewalDue   = "sessions_renewal_due"
	MetricSessionsInvalid      = "sessions_invalid"
	MetricSessionOldestAgeDays = "session_oldest_age_days"
	// MetricSessionsUnknown counts sessions the site could not be asked
	// about (unreachable): neither healthy nor broken.
	MetricSessionsUnknown = "sessions_unknown"
	// MetricSessionsUnhealthy is due + invalid: what the alarm watches.
	MetricSessionsUnhealthy = "sessions_unhealthy"
)

// SessionSecretsAPI is the part of Secrets Manager the health check uses.
type SessionSecretsAPI interface {
	ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// SessionChecker checks every creator's OnlyFans session secret under
// Prefix: its value is {"sessionCookie": non-empty}, it does not declare a
// rotation (a rotation cannot mint a session: it would report success and
// change nothing), and its current value is younger than RenewAfter. Seed
// 003 R8.5 asks for credentials rotated every 90 days: the check makes a
// session older than RenewAfter (80 days) an alarm, and renewing it is the
// runbook's step (docs/runbook.md#session-renewal-due). With Probe.URL set
// it also asks the site (SessionProbeSettings): a session the site refuses
// is invalid; one it could not be asked about is Unknown.
type SessionChecker struct {
	Secrets    SessionSecretsAPI
	Prefix     string
	RenewAfter time.Duration
	Probe      SessionProbeSettings
	// HTTP is the probe's client (http.DefaultClient when nil).
	HTTP    *http.Client
	Metrics *metrics.Emitter
	Log     *slog.Logger
	Now     func() time.Time
}

// SessionReport is what one check found.
type SessionReport struct {
	Checked    int
	RenewalDue []string // creator ids
	Invalid    []string // creator ids (with the reason in the log)
	Unknown    []string // creator ids the site could not be asked about
	Oldest     time.Duration
}

// maxPages bounds the listing: 100 pages of 100 secrets.
const maxPages = 100

// Check runs once: one log line per unhealthy session (creator id, age,
// reason; never the value) and one EMF line with the counts. It fails only
// when the secrets cannot be listed; one unreadable secret is counted
// invalid.
func (c *SessionChecker) Check(ctx context.Context) (SessionReport, error) {
	var rep SessionReport
	in := &secretsmanager.ListSecretsInput{
		Filters:    []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{c.Prefix}}},
		MaxResults: aws.Int32(100),
	}
	for page := 0; ; page++ {
		if page == maxPages {
			return rep, fmt.Errorf("more than %d pages of session secrets", maxPages)
		}
		out, err := c.Secrets.ListSecrets(ctx, in)
		if err != nil {
			return rep, fmt.Errorf("list session secrets: %w", err)
		}
		for _, s := range out.SecretList {
			name := aws.ToString(s.Name)
			if !strings.HasPrefix(name, c.Prefix) { // the filter matches words, not only prefixes
				continue
			}
			rep.Checked++
			c.checkOne(ctx, strings.TrimPrefix(name, c.Prefix), s, &rep)
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	return rep, c.publish(rep)
}

// checkOne checks creator's session secret s and adds what it found to rep.
func (c *SessionChecker) checkOne(ctx context.Context, creator string, s smtypes.SecretListEntry, rep *SessionReport) {
	invalid := func(reason string) {
		rep.Invalid = append(rep.Invalid, creator)
		c.Log.Warn("session secret unhealthy", "creator_id", creator, "reason", reason)
	}
	if aws.ToBool(s.RotationEnabled) {
		invalid("the secret declares a rotation; OnlyFans sessions cannot be rotated: cancel it (aws secretsmanager cancel-rotate-secret) and renew by hand")
		return
	}
	v, err := c.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: s.ARN})
	if err != nil {
		invalid("cannot read the secret: " + err.Error())
		return
	}
	cookie, err := sessionCookie(aws.ToString(v.SecretString))
	if err != nil {
		invalid(err.Error())
		return
	}
	if c.Probe.URL != "" {
		client := c.HTTP
		if client == nil {
			client = http.DefaultClient
		}
		switch res, reason := c.Probe.probe(ctx, client, cookie); res {
		case probeRefused:
			invalid(reason)
			return
		case probeUnknown:
			rep.Unknown = append(rep.Unknown, creator)
			c.Log.Warn("session not checked with the site", "creator_id", creator, "reason", reason)
		}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	// The age of the current value: when it was put, not when the secret's
	// metadata last changed.
	age := now().Sub(aws.ToTime(v.CreatedDate))
	rep.Oldest = max(rep.Oldest, age)
	if age >= c.RenewAfter {
		rep.RenewalDue = append(rep.RenewalDue, creator)
		c.Log.Warn("session renewal due", "creator_id", creator, "age_days", int(age.Hours()/24), "renew_after_days", int(c.RenewAfter.Hours()/24))
	}
}

// publish writes the counts (EMF) and the summary line.
func (c *SessionChecker) publish(rep SessionReport) error {
	set := metrics.NewSet()
	set.Put(MetricSessionsChecked, metrics.Count, float64(rep.Checked))
	set.Put(MetricSessionsRenewalDue, metrics.Count, float64(len(rep.RenewalDue)))
	set.Put(MetricSessionsInvalid, metrics.Count, float64(len(rep.Invalid)))
	set.Put(MetricSessionsUnhealthy, metrics.Count, float64(len(rep.RenewalDue)+len(rep.Invalid)))
	set.Put(MetricSessionsUnknown, metrics.Count, float64(len(rep.Unknown)))
	set.Put(MetricSessionOldestAgeDays, metrics.Count, rep.Oldest.Hours()/24)
	if err := c.Metrics.Emit(set); err != nil {
		return err
	}
	c.Log.Info("session health checked", "checked", rep.Checked, "renewal_due", len(rep.RenewalDue), "invalid", len(rep.Invalid), "unknown", len(rep.Unknown), "oldest_days", int(rep.Oldest.Hours()/24))
	return nil
}

// ValidateSession checks one creator's OnlyFans session secret:
// {"sessionCookie": non-empty}.
func ValidateSession(s string) error {
	_, err := sessionCookie(s)
	return err
}

func sessionCookie(s string) (string, error) {
	var c struct {
		SessionCookie string `json:"sessionCookie"`
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return "", fmt.Errorf("session secret is not a JSON object: %w", err)
	}
	if c.SessionCookie == "" {
		return "", errors.New("session secret has no sessionCookie")
	}
	return c.SessionCookie, nil
}
