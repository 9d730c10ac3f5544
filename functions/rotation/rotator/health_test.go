package rotator

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/huntaze/message-pipeline/devstack/fakesite"
	"github.com/huntaze/message-pipeline/internal/metrics"
)

// fakeSessions lists secrets in pages of two, as Secrets Manager pages
// (no emulator for Secrets Manager here: the paging and the check are the
// logic under test).
type fakeSessions struct {
	secrets []smtypes.SecretListEntry
	values  map[string]string    // arn -> value
	created map[string]time.Time // arn -> current version's creation
}

func (f *fakeSessions) ListSecrets(_ context.Context, in *secretsmanager.ListSecretsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	start := 0
	if in.NextToken != nil {
		start = int((*in.NextToken)[0] - '0')
	}
	end := min(start+2, len(f.secrets))
	out := &secretsmanager.ListSecretsOutput{SecretList: f.secrets[start:end]}
	if end < len(f.secrets) {
		out.NextToken = aws.String(string(rune('0' + end)))
	}
	return out, nil
}

func (f *fakeSessions) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, ok := f.values[*in.SecretId]
	if !ok {
		return nil, &smtypes.ResourceNotFoundException{Message: aws.String("gone")}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v), CreatedDate: aws.Time(f.created[*in.SecretId])}, nil
}

func TestSessionHealth_FlagsSessionsDueForRenewalBrokenOnesAndFakeRotations(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	prefix := "huntaze/dev/onlyfans-session/"
	f := &fakeSessions{values: map[string]string{}, created: map[string]time.Time{}}
	add := func(creator, value string, age time.Duration, rotating bool) {
		arn := "arn:" + creator
		f.secrets = append(f.secrets, smtypes.SecretListEntry{Name: aws.String(prefix + creator), ARN: aws.String(arn), RotationEnabled: aws.Bool(rotating)})
		if value != "" {
			f.values[arn], f.created[arn] = value, now.Add(-age)
		}
	}
	// GIVEN sessions: fresh, 79 days, 80 days (due), not JSON, no cookie,
	// one with a rotation attached, one unreadable, and another prefix's
	add("fresh", `{"sessionCookie":"secret-cookie-1"}`, time.Hour, false)
	add("almost", `{"sessionCookie":"secret-cookie-2"}`, 79*24*time.Hour, false)
	add("due", `{"sessionCookie":"secret-cookie-3"}`, 80*24*time.Hour, false)
	add("garbled", `secret-cookie-4`, time.Hour, false)
	add("empty", `{"sessionCookie":""}`, time.Hour, false)
	add("rotating", `{"sessionCookie":"secret-cookie-5"}`, time.Hour, true)
	add("unreadable", "", 0, false)
	f.secrets = append(f.secrets, smtypes.SecretListEntry{Name: aws.String("huntaze/prod/onlyfans-session/other"), ARN: aws.String("arn:other")})
	var logs, emf bytes.Buffer
	c := &SessionChecker{Secrets: f, Prefix: prefix, RenewAfter: DefaultSessionRenewAfter, Now: func() time.Time { return now },
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: metrics.New(&emf, map[string]string{"Service": "session-health", "Environment": "dev"}, func() time.Time { return now })}
	// WHEN the scheduled check runs
	rep, err := c.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// THEN it found exactly these
	if rep.Checked != 7 || strings.Join(rep.RenewalDue, ",") != "due" || strings.Join(rep.Invalid, ",") != "garbled,empty,rotating,unreadable" {
		t.Fatalf("report %+v", rep)
	}
	if d := int(rep.Oldest.Hours() / 24); d != 80 {
		t.Errorf("oldest %d days", d)
	}
	// AND the metric line carries the counts the alarm watches
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(emf.Bytes()), &line); err != nil {
		t.Fatalf("EMF %q: %v", emf.String(), err)
	}
	if line[MetricSessionsUnhealthy] != 5.0 || line[MetricSessionsRenewalDue] != 1.0 || line[MetricSessionsInvalid] != 4.0 || line["Environment"] != "dev" {
		t.Errorf("EMF %v", line)
	}
	// AND the logs name creators and reasons, never a cookie
	if strings.Contains(logs.String()+emf.String(), "secret-cookie") {
		t.Errorf("a session value reached the logs:\n%s", logs.String())
	}
	for _, want := range []string{`"creator_id":"due"`, "cancel-rotate-secret", `"creator_id":"unreadable"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
}

// Review of issue 24: the scheduled check is the only thing that looks at a
// session while its creator sends nothing; it reads the secret's shape and
// age, never the site. A session OnlyFans already ended (logged out on
// another device, password changed) is reported healthy until the first
// message fails on it.
func TestSessionHealth_ASessionTheSiteRefusesIsNotReportedHealthy(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	prefix := "huntaze/dev/onlyfans-session/"
	// GIVEN the fake site, where creator-live's session works and
	// creator-ended's (a day old) was ended by the site
	site := fakesite.Start(t)
	live := site.AddCreator("creator-live")
	ended := "session-creator-ended"
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for cookie, want := range map[string]int{live: http.StatusOK, ended: http.StatusFound} {
		req, _ := http.NewRequest("GET", site.URL+"/my/chats/chat/fan-1", nil)
		req.AddCookie(&http.Cookie{Name: fakesite.VariantA.Cookie, Value: cookie})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("site with cookie %q: %d, want %d", cookie, resp.StatusCode, want)
		}
	}
	f := &fakeSessions{values: map[string]string{}, created: map[string]time.Time{}}
	for creator, cookie := range map[string]string{"creator-live": live, "creator-ended": ended} {
		arn := "arn:" + creator
		f.secrets = append(f.secrets, smtypes.SecretListEntry{Name: aws.String(prefix + creator), ARN: aws.String(arn), RotationEnabled: aws.Bool(false)})
		f.values[arn], f.created[arn] = `{"sessionCookie":"`+cookie+`"}`, now.Add(-24*time.Hour)
	}
	var logs, emf bytes.Buffer
	c := &SessionChecker{Secrets: f, Prefix: prefix, RenewAfter: DefaultSessionRenewAfter, Now: func() time.Time { return now },
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: metrics.New(&emf, map[string]string{"Service": "session-health", "Environment": "dev"}, func() time.Time { return now })}
	// (the check asks the site its settings name: here the fake site's
	// chat page, cookie and login path)
	c.Probe = SessionProbeSettings{URL: site.URL + "/my/chats/chat/fan-1", CookieName: fakesite.VariantA.Cookie, LoginURLPart: fakesite.VariantA.LoginPath, Timeout: time.Minute}
	// WHEN the scheduled check runs
	rep, err := c.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// THEN the ended session is unhealthy (and the live one is not)
	if strings.Join(rep.Invalid, ",") != "creator-ended" {
		t.Fatalf("invalid sessions %v, want [creator-ended]: a session the site refuses was reported healthy (report %+v)", rep.Invalid, rep)
	}
}

// A site the check cannot reach says nothing about a session: the session
// is Unknown (its own metric), not broken, not healthy-by-probe.
func TestSessionHealth_AnUnreachableSiteLeavesTheSessionUnknownNotBroken(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	prefix := "huntaze/dev/onlyfans-session/"
	// GIVEN a session and a site whose port accepts no connection
	site := fakesite.Start(t)
	site.Close()
	f := &fakeSessions{values: map[string]string{"arn:c": `{"sessionCookie":"x"}`}, created: map[string]time.Time{"arn:c": now.Add(-time.Hour)},
		secrets: []smtypes.SecretListEntry{{Name: aws.String(prefix + "creator-1"), ARN: aws.String("arn:c"), RotationEnabled: aws.Bool(false)}}}
	var logs, emf bytes.Buffer
	c := &SessionChecker{Secrets: f, Prefix: prefix, RenewAfter: DefaultSessionRenewAfter, Now: func() time.Time { return now },
		Probe: SessionProbeSettings{URL: site.URL + "/my/chats", CookieName: fakesite.VariantA.Cookie, LoginURLPart: fakesite.VariantA.LoginPath, Timeout: time.Minute},
		Log:   slog.New(slog.NewJSONHandler(&logs, nil)), Metrics: metrics.New(&emf, map[string]string{"Service": "session-health", "Environment": "dev"}, func() time.Time { return now })}
	// WHEN the check runs
	rep, err := c.Check(context.Background())
	// THEN the session is unknown, not invalid, and the cookie is in no log
	if err != nil || len(rep.Invalid) != 0 || strings.Join(rep.Unknown, ",") != "creator-1" {
		t.Fatalf("report %+v, err %v: want creator-1 unknown, none invalid", rep, err)
	}
	if !strings.Contains(emf.String(), `"sessions_unknown":1`) || strings.Contains(logs.String(), `"x"`) {
		t.Fatalf("emf %s logs %s", emf.String(), logs.String())
	}
}
