// Package rotator implements the Secrets Manager rotation of the Redis AUTH
// token and the scheduled health check of the creators' OnlyFans sessions.
//
// Redis AUTH token (four rotation steps, then one more):
//   - createSecret: a new random token becomes AWSPENDING;
//   - setSecret: ElastiCache gets it with the ROTATE strategy: old and new
//     are both accepted, so clients holding the old one keep working;
//   - testSecret: waits (bounded, ApplyWait) until ElastiCache has applied
//     the change (DescribeReplicationGroups: the group "available", no
//     pending AUTH token change; ModifyReplicationGroup only accepts it),
//     then AUTH + PING with the new token. Still pending at the bound: the
//     step fails, AWSPENDING stays, and Secrets Manager's retry of the
//     rotation resumes it (every step is idempotent);
//   - finishSecret: the new token becomes AWSCURRENT;
//   - enforceSecret (scheduled, not a Secrets Manager step): once the
//     current token has been current for EnforceAfter — longer than any
//     client keeps a token (redisconn.MaxTokenAge) — ElastiCache gets it
//     again with the SET strategy, which drops every other token: the old
//     one stops working. The version is labelled ENFORCED, so it runs
//     once, only after the SET has been applied and the previous token is
//     refused (WRONGPASS); while the SET is pending, or the previous token
//     still works, nothing is labelled and the next scheduled run looks
//     again. Without it the old token would stay valid until the next
//     rotation, and that rotation's ROTATE would find two tokens already.
//
// OnlyFans sessions are not rotated: OnlyFans has no API to mint a
// session, and a "rotation" that copies the cookie into a new version
// would report success while the credential never changed. SessionHealth
// (health.go) checks every session secret on a schedule instead; renewal
// is an operator's runbook step.
package rotator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	ectypes "github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Event is what Secrets Manager sends to a rotation function.
type Event struct {
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	Step               string `json:"Step"`
}

// SecretsAPI is the part of Secrets Manager rotation uses.
type SecretsAPI interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(ctx context.Context, in *secretsmanager.PutSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
	UpdateSecretVersionStage(ctx context.Context, in *secretsmanager.UpdateSecretVersionStageInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error)
	GetRandomPassword(ctx context.Context, in *secretsmanager.GetRandomPasswordInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error)
}

// CacheAPI is the part of ElastiCache the Redis rotation uses.
type CacheAPI interface {
	ModifyReplicationGroup(ctx context.Context, in *elasticache.ModifyReplicationGroupInput, optFns ...func(*elasticache.Options)) (*elasticache.ModifyReplicationGroupOutput, error)
	DescribeReplicationGroups(ctx context.Context, in *elasticache.DescribeReplicationGroupsInput, optFns ...func(*elasticache.Options)) (*elasticache.DescribeReplicationGroupsOutput, error)
}

// Defaults of the wait for ElastiCache to apply a token change: a modify
// with ApplyImmediately takes seconds to minutes; the bound keeps the step
// inside the function's timeout (infra: RotationTimeout).
const (
	DefaultApplyWait = 4 * time.Minute
	DefaultApplyPoll = 10 * time.Second
)

// Kind says what the secret protects.
type Kind string

const (
	RedisAuth     Kind = "redis-auth"
	SessionHealth Kind = "session-health"
)

// EnforceStep is the scheduled step that SETs the current token, and
// EnforcedStage the label of a version whose token was SET.
const (
	EnforceStep   = "enforceSecret"
	EnforcedStage = "ENFORCED"
)

// Rotator runs the steps.
type Rotator struct {
	Kind             Kind
	Secrets          SecretsAPI
	Cache            CacheAPI
	ReplicationGroup string
	// TestToken checks a Redis token (AUTH + PING); nil skips the test.
	TestToken func(ctx context.Context, token string) error
	// EnforceAfter is how long a token must have been current before the
	// enforce step SETs it (at least redisconn.MaxTokenAge).
	EnforceAfter time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Log receives what the enforce step decided (nil: discarded).
	Log *slog.Logger
	// ApplyWait bounds the wait for ElastiCache to apply a token change and
	// ApplyPoll is the time between two looks (Settings' APPLY_WAIT and
	// APPLY_POLL; both must be positive).
	ApplyWait, ApplyPoll time.Duration
	// IsRefused says an error of TestToken is Redis refusing the token, not
	// an unreachable server (nil: WRONGPASS or an invalid password).
	IsRefused func(error) bool
}

// errPending says ElastiCache has not applied a token change within
// ApplyWait.
var errPending = errors.New("ElastiCache has not applied the AUTH token change yet")

// waitApplied polls DescribeReplicationGroups until the group is
// "available" with no pending AUTH token change, at most ApplyWait.
func (r *Rotator) waitApplied(ctx context.Context) error {
	wait, poll := r.ApplyWait, r.ApplyPoll
	if wait <= 0 || poll <= 0 {
		return fmt.Errorf("rotator: APPLY_WAIT %s and APPLY_POLL %s must be positive", wait, poll)
	}
	deadline := time.Now().Add(wait)
	for {
		out, err := r.Cache.DescribeReplicationGroups(ctx, &elasticache.DescribeReplicationGroupsInput{ReplicationGroupId: aws.String(r.ReplicationGroup)})
		if err != nil {
			return err
		}
		status, pending := "missing", ectypes.AuthTokenUpdateStatus("")
		if len(out.ReplicationGroups) == 1 {
			g := out.ReplicationGroups[0]
			status = aws.ToString(g.Status)
			if g.PendingModifiedValues != nil {
				pending = g.PendingModifiedValues.AuthTokenStatus
			}
		}
		if status == "available" && pending == "" {
			return nil
		}
		if !time.Now().Add(poll).Before(deadline) {
			return fmt.Errorf("%w: replication group %s is %s (auth token %q) after %s", errPending, r.ReplicationGroup, status, pending, wait)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (r *Rotator) refused(err error) bool {
	if err == nil {
		return false
	}
	if r.IsRefused != nil {
		return r.IsRefused(err)
	}
	msg := err.Error()
	return strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "invalid password")
}

// Handle runs one rotation step.
func (r *Rotator) Handle(ctx context.Context, ev Event) error {
	if r.Kind != RedisAuth {
		return fmt.Errorf("rotation of %q secrets is not supported: only %s rotates", r.Kind, RedisAuth)
	}
	desc, err := r.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(ev.SecretID)})
	if err != nil {
		return err
	}
	if ev.Step == EnforceStep {
		return r.enforce(ctx, ev.SecretID, desc)
	}
	if !aws.ToBool(desc.RotationEnabled) {
		return errors.New("rotation is not enabled on this secret")
	}
	stages, ok := desc.VersionIdsToStages[ev.ClientRequestToken]
	if !ok {
		return fmt.Errorf("version %s is not a version of the secret", ev.ClientRequestToken)
	}
	if has(stages, "AWSCURRENT") {
		return nil // already done
	}
	if !has(stages, "AWSPENDING") {
		return fmt.Errorf("version %s is not pending", ev.ClientRequestToken)
	}
	switch ev.Step {
	case "createSecret":
		return r.create(ctx, ev)
	case "setSecret":
		return r.set(ctx, ev)
	case "testSecret":
		return r.test(ctx, ev)
	case "finishSecret":
		return r.finish(ctx, ev, desc.VersionIdsToStages)
	}
	return fmt.Errorf("unknown step %q", ev.Step)
}

func has(stages []string, s string) bool {
	for _, x := range stages {
		if x == s {
			return true
		}
	}
	return false
}

func (r *Rotator) value(ctx context.Context, id, stage, version string) (string, error) {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	if version != "" {
		in.VersionId = aws.String(version)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	out, err := r.Secrets.GetSecretValue(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func (r *Rotator) create(ctx context.Context, ev Event) error {
	if _, err := r.value(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken); err == nil {
		return nil // created by an earlier attempt
	} else if !isNotFound(err) {
		return err
	}
	out, err := r.Secrets.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{
		PasswordLength: aws.Int64(64), ExcludePunctuation: aws.Bool(true),
	})
	if err != nil {
		return err
	}
	_, err = r.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(ev.SecretID), ClientRequestToken: aws.String(ev.ClientRequestToken),
		SecretString: out.RandomPassword, VersionStages: []string{"AWSPENDING"},
	})
	return err
}

func (r *Rotator) set(ctx context.Context, ev Event) error {
	pending, err := r.value(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken)
	if err != nil {
		return err
	}
	_, err = r.Cache.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String(r.ReplicationGroup), AuthToken: aws.String(pending),
		AuthTokenUpdateStrategy: ectypes.AuthTokenUpdateStrategyTypeRotate, ApplyImmediately: aws.Bool(true),
	})
	return err
}

func (r *Rotator) test(ctx context.Context, ev Event) error {
	pending, err := r.value(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken)
	if err != nil {
		return err
	}
	if err := r.waitApplied(ctx); err != nil {
		return fmt.Errorf("testSecret: %w", err)
	}
	if r.TestToken == nil {
		return nil
	}
	return r.TestToken(ctx, pending)
}

func (r *Rotator) finish(ctx context.Context, ev Event, versions map[string][]string) error {
	current := ""
	for v, stages := range versions {
		if has(stages, "AWSCURRENT") {
			current = v
		}
	}
	_, err := r.Secrets.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(ev.SecretID), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(ev.ClientRequestToken), RemoveFromVersionId: aws.String(current),
	})
	return err
}

// enforce SETs the current token once it has been current for
// EnforceAfter, so that every other token stops working. It does nothing
// while a rotation is under way (SET would drop the pending token), before
// the first rotation (the token is the only one), or when it already ran.
func (r *Rotator) enforce(ctx context.Context, id string, desc *secretsmanager.DescribeSecretOutput) error {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	current, enforced, due, err := r.enforceDue(desc, log)
	if err != nil || !due {
		return err
	}
	token, err := r.value(ctx, id, "AWSCURRENT", current)
	if err != nil {
		return err
	}
	previous, err := r.value(ctx, id, "AWSPREVIOUS", "")
	if err != nil && !isNotFound(err) {
		return err
	}
	if r.TestToken != nil {
		if err := r.TestToken(ctx, token); err != nil {
			return fmt.Errorf("the current token does not work; not dropping the others: %w", err)
		}
	}
	if applied, err := r.setOnly(ctx, token, current, log); err != nil || !applied {
		return err
	}
	if refused, err := r.previousRefused(ctx, previous, token, current, log); err != nil || !refused {
		return err
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(id), VersionStage: aws.String(EnforcedStage), MoveToVersionId: aws.String(current)}
	if enforced != "" {
		in.RemoveFromVersionId = aws.String(enforced)
	}
	if _, err := r.Secrets.UpdateSecretVersionStage(ctx, in); err != nil {
		return err
	}
	log.Info("redis token enforced: only the current token is accepted", "version", current)
	return nil
}

// enforceDue reads the secret's versions: the current and the enforced one,
// and whether enforcing is due (no rotation under way, rotated at least
// once, current for EnforceAfter, not enforced yet).
func (r *Rotator) enforceDue(desc *secretsmanager.DescribeSecretOutput, log *slog.Logger) (current, enforced string, due bool, err error) {
	for v, stages := range desc.VersionIdsToStages {
		if has(stages, "AWSCURRENT") {
			current = v
		}
		if has(stages, EnforcedStage) {
			enforced = v
		}
		if has(stages, "AWSPENDING") && !has(stages, "AWSCURRENT") {
			log.Info("redis token enforce: a rotation is under way; next time", "pending_version", v)
			return "", "", false, nil
		}
	}
	switch {
	case current == "":
		return "", "", false, errors.New("the secret has no AWSCURRENT version")
	case current == enforced:
		return current, enforced, false, nil // done
	case desc.LastRotatedDate == nil:
		log.Info("redis token enforce: never rotated; the token is the only one")
		return current, enforced, false, nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if age := now().Sub(*desc.LastRotatedDate); age < r.EnforceAfter {
		log.Info("redis token enforce: clients may still hold the previous token", "current_for", age.Round(time.Second).String(), "enforce_after", r.EnforceAfter.String())
		return current, enforced, false, nil
	}
	return current, enforced, true, nil
}

// setOnly makes token the only one Redis accepts (AUTH token strategy SET)
// and reports whether ElastiCache applied it: it only accepted the SET, so
// nothing is labelled before it is applied and the previous token refused.
func (r *Rotator) setOnly(ctx context.Context, token, version string, log *slog.Logger) (bool, error) {
	if _, err := r.Cache.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String(r.ReplicationGroup), AuthToken: aws.String(token),
		AuthTokenUpdateStrategy: ectypes.AuthTokenUpdateStrategyTypeSet, ApplyImmediately: aws.Bool(true),
	}); err != nil {
		return false, err
	}
	if err := r.waitApplied(ctx); errors.Is(err, errPending) {
		log.Info("redis token enforce: SET accepted, not applied yet; the next run checks again", "version", version, "reason", err.Error())
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, nil
}

// previousRefused reports whether Redis refuses the previous token (true
// when there is none to test).
func (r *Rotator) previousRefused(ctx context.Context, previous, token, version string, log *slog.Logger) (bool, error) {
	if r.TestToken == nil || previous == "" || previous == token {
		return true, nil
	}
	err := r.TestToken(ctx, previous)
	switch {
	case err == nil:
		log.Info("redis token enforce: the previous token still works; the next run checks again", "version", version)
		return false, nil
	case !r.refused(err):
		return false, fmt.Errorf("cannot tell whether the previous token is refused; not labelling %s: %w", EnforcedStage, err)
	}
	return true, nil
}

func isNotFound(err error) bool {
	var nf *smtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}
