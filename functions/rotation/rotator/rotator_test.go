package rotator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	ectypes "github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// fakeSecrets keeps versions and stages in memory: the rotation protocol's
// bookkeeping is the pure logic under test here (no emulator exists for
// Secrets Manager or ElastiCache on this machine).
type fakeSecrets struct {
	values map[string]string   // version -> value
	stages map[string][]string // version -> stages
	// lastRotated is set by finishSecret's promotion, as Secrets Manager does.
	lastRotated *time.Time
	now         func() time.Time
	generated   int
}

func (f *fakeSecrets) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return &secretsmanager.DescribeSecretOutput{RotationEnabled: aws.Bool(true), VersionIdsToStages: f.stages, LastRotatedDate: f.lastRotated}, nil
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if in.VersionId == nil && in.VersionStage == nil {
		in.VersionStage = aws.String("AWSCURRENT") // Secrets Manager's default
	}
	for v, st := range f.stages {
		if (in.VersionId == nil || *in.VersionId == v) && (in.VersionStage == nil || has(st, *in.VersionStage)) {
			if val, ok := f.values[v]; ok {
				return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(val)}, nil
			}
		}
	}
	return nil, &smtypes.ResourceNotFoundException{}
}

func (f *fakeSecrets) PutSecretValue(_ context.Context, in *secretsmanager.PutSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	f.values[*in.ClientRequestToken] = *in.SecretString
	f.stages[*in.ClientRequestToken] = in.VersionStages
	return &secretsmanager.PutSecretValueOutput{}, nil
}

// UpdateSecretVersionStage moves a label as Secrets Manager does: a label
// held by another version must be removed from it in the same call; moving
// AWSCURRENT removes AWSPENDING from the new version and labels the old one
// AWSPREVIOUS.
func (f *fakeSecrets) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	label := *in.VersionStage
	for v, st := range f.stages {
		if has(st, label) && (in.RemoveFromVersionId == nil || *in.RemoveFromVersionId != v) {
			return nil, fmt.Errorf("label %s is on version %s: name it in RemoveFromVersionId", label, v)
		}
	}
	without := func(st []string, l string) []string {
		var out []string
		for _, x := range st {
			if x != l {
				out = append(out, x)
			}
		}
		return out
	}
	if in.RemoveFromVersionId != nil {
		f.stages[*in.RemoveFromVersionId] = without(f.stages[*in.RemoveFromVersionId], label)
	}
	if in.MoveToVersionId != nil {
		f.stages[*in.MoveToVersionId] = append(f.stages[*in.MoveToVersionId], label)
	}
	if label == "AWSCURRENT" {
		for v, st := range f.stages {
			f.stages[v] = without(st, "AWSPREVIOUS")
		}
		f.stages[*in.MoveToVersionId] = without(f.stages[*in.MoveToVersionId], "AWSPENDING")
		f.stages[*in.RemoveFromVersionId] = append(f.stages[*in.RemoveFromVersionId], "AWSPREVIOUS")
		now := time.Now()
		if f.now != nil {
			now = f.now()
		}
		f.lastRotated = &now
	}
	return &secretsmanager.UpdateSecretVersionStageOutput{}, nil
}

func (f *fakeSecrets) GetRandomPassword(_ context.Context, _ *secretsmanager.GetRandomPasswordInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error) {
	f.generated++
	if f.generated == 1 {
		return &secretsmanager.GetRandomPasswordOutput{RandomPassword: aws.String("new-token")}, nil
	}
	return &secretsmanager.GetRandomPasswordOutput{RandomPassword: aws.String(fmt.Sprintf("new-token-%d", f.generated))}, nil
}

type fakeCache struct {
	calls []elasticache.ModifyReplicationGroupInput
}

func (f *fakeCache) ModifyReplicationGroup(_ context.Context, in *elasticache.ModifyReplicationGroupInput, _ ...func(*elasticache.Options)) (*elasticache.ModifyReplicationGroupOutput, error) {
	f.calls = append(f.calls, *in)
	return &elasticache.ModifyReplicationGroupOutput{}, nil
}

func (f *fakeCache) DescribeReplicationGroups(context.Context, *elasticache.DescribeReplicationGroupsInput, ...func(*elasticache.Options)) (*elasticache.DescribeReplicationGroupsOutput, error) {
	return &elasticache.DescribeReplicationGroupsOutput{ReplicationGroups: []ectypes.ReplicationGroup{{Status: aws.String("available")}}}, nil
}

func run(t *testing.T, r *Rotator, token string) error {
	for _, step := range []string{"createSecret", "setSecret", "testSecret", "finishSecret"} {
		if err := r.Handle(context.Background(), Event{SecretID: "s", ClientRequestToken: token, Step: step}); err != nil {
			return err
		}
	}
	return nil
}

func TestRedisRotationSetsTheNewTokenWithROTATEAndPromotesIt(t *testing.T) {
	sec := &fakeSecrets{values: map[string]string{"v1": "old-token"}, stages: map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}}
	cache := &fakeCache{}
	var tested string
	r := &Rotator{Kind: RedisAuth, ApplyWait: DefaultApplyWait, ApplyPoll: DefaultApplyPoll, Secrets: sec, Cache: cache, ReplicationGroup: "rg-1", TestToken: func(_ context.Context, tok string) error { tested = tok; return nil }}
	if err := run(t, r, "v2"); err != nil {
		t.Fatal(err)
	}
	if len(cache.calls) != 1 || *cache.calls[0].AuthToken != "new-token" || cache.calls[0].AuthTokenUpdateStrategy != "ROTATE" || *cache.calls[0].ReplicationGroupId != "rg-1" {
		t.Fatalf("ElastiCache calls %+v", cache.calls)
	}
	if tested != "new-token" || !has(sec.stages["v2"], "AWSCURRENT") || !has(sec.stages["v1"], "AWSPREVIOUS") {
		t.Fatalf("tested %q, stages %v", tested, sec.stages)
	}
}

func TestRedisRotationStopsWhenTheNewTokenFailsItsTest(t *testing.T) {
	sec := &fakeSecrets{values: map[string]string{"v1": "old"}, stages: map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}}
	r := &Rotator{Kind: RedisAuth, ApplyWait: DefaultApplyWait, ApplyPoll: DefaultApplyPoll, Secrets: sec, Cache: &fakeCache{}, TestToken: func(context.Context, string) error { return errors.New("WRONGPASS") }}
	if err := run(t, r, "v2"); err == nil || has(sec.stages["v2"], "AWSCURRENT") {
		t.Fatalf("err %v, stages %v", err, sec.stages)
	}
}

func TestOnlyTheRedisTokenRotates(t *testing.T) {
	// GIVEN a session secret someone attached the rotation function to
	sec := &fakeSecrets{values: map[string]string{"v1": `{"sessionCookie":"abc"}`}, stages: map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}}
	// THEN its rotation fails at the first step, and nothing is written:
	// a copy of the cookie as a "new" version would be a success that
	// changed nothing
	if err := run(t, &Rotator{Kind: SessionHealth, Secrets: sec}, "v2"); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("session rotation: %v", err)
	}
	if _, ok := sec.values["v2"]; ok {
		t.Fatalf("a version was written: %v", sec.values)
	}
}
