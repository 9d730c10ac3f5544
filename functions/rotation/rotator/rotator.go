// Package rotator implements the Secrets Manager rotation steps for the
// pipeline's two secrets:
//
//   - the Redis AUTH token: a new random token becomes AWSPENDING, ElastiCache
//     gets it with the ROTATE strategy (old and new are both accepted), it is
//     tested with AUTH + PING, then promoted to AWSCURRENT. Clients that read
//     the old token at start keep working until the next rotation.
//   - a creator's OnlyFans session (one secret per creator): OnlyFans offers
//     no API to mint sessions, so rotation cannot renew them. It
//     re-validates the stored JSON (a non-empty sessionCookie) and promotes the same value as a
//     new version, so a broken secret fails its scheduled rotation loudly
//     (Secrets Manager reports it) instead of failing sends later. Renewal is
//     done by an operator with put-secret-value (README).
package rotator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
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
}

// Kind says what the secret protects.
type Kind string

const (
	RedisAuth        Kind = "redis-auth"
	OnlyFansSessions Kind = "onlyfans-sessions"
)

// Rotator runs the steps.
type Rotator struct {
	Kind             Kind
	Secrets          SecretsAPI
	Cache            CacheAPI
	ReplicationGroup string
	// TestToken checks a Redis token (AUTH + PING); nil skips the test.
	TestToken func(ctx context.Context, token string) error
}

// Handle runs one rotation step.
func (r *Rotator) Handle(ctx context.Context, ev Event) error {
	desc, err := r.Secrets.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(ev.SecretID)})
	if err != nil {
		return err
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
	var next string
	switch r.Kind {
	case RedisAuth:
		out, err := r.Secrets.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{
			PasswordLength: aws.Int64(64), ExcludePunctuation: aws.Bool(true),
		})
		if err != nil {
			return err
		}
		next = aws.ToString(out.RandomPassword)
	case OnlyFansSessions:
		current, err := r.value(ctx, ev.SecretID, "AWSCURRENT", "")
		if err != nil {
			return err
		}
		if err := ValidateSessions(current); err != nil {
			return err
		}
		next = current
	default:
		return fmt.Errorf("unknown secret kind %q", r.Kind)
	}
	_, err := r.Secrets.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(ev.SecretID), ClientRequestToken: aws.String(ev.ClientRequestToken),
		SecretString: aws.String(next), VersionStages: []string{"AWSPENDING"},
	})
	return err
}

func (r *Rotator) set(ctx context.Context, ev Event) error {
	if r.Kind != RedisAuth {
		return nil
	}
	pending, err := r.value(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken)
	if err != nil {
		return err
	}
	_, err = r.Cache.ModifyReplicationGroup(ctx, &elasticache.ModifyReplicationGroupInput{
		ReplicationGroupId: aws.String(r.ReplicationGroup), AuthToken: aws.String(pending),
		AuthTokenUpdateStrategy: "ROTATE", ApplyImmediately: aws.Bool(true),
	})
	return err
}

func (r *Rotator) test(ctx context.Context, ev Event) error {
	pending, err := r.value(ctx, ev.SecretID, "AWSPENDING", ev.ClientRequestToken)
	if err != nil {
		return err
	}
	switch r.Kind {
	case RedisAuth:
		if r.TestToken == nil {
			return nil
		}
		return r.TestToken(ctx, pending)
	default:
		return ValidateSessions(pending)
	}
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

// ValidateSessions checks one creator's OnlyFans session secret:
// {"sessionCookie": non-empty}.
func ValidateSessions(s string) error {
	var c struct {
		SessionCookie string `json:"sessionCookie"`
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return fmt.Errorf("session secret is not a JSON object: %w", err)
	}
	if c.SessionCookie == "" {
		return errors.New("session secret has no sessionCookie")
	}
	return nil
}

func isNotFound(err error) bool {
	var nf *smtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}
