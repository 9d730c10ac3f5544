package rotator

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// fakeSecrets keeps versions and stages in memory: the rotation protocol's
// bookkeeping is the pure logic under test here (no emulator exists for
// Secrets Manager or ElastiCache on this machine).
type fakeSecrets struct {
	values map[string]string   // version -> value
	stages map[string][]string // version -> stages
}

func (f *fakeSecrets) DescribeSecret(context.Context, *secretsmanager.DescribeSecretInput, ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	return &secretsmanager.DescribeSecretOutput{RotationEnabled: aws.Bool(true), VersionIdsToStages: f.stages}, nil
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
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

func (f *fakeSecrets) UpdateSecretVersionStage(_ context.Context, in *secretsmanager.UpdateSecretVersionStageInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.UpdateSecretVersionStageOutput, error) {
	f.stages[*in.MoveToVersionId] = []string{"AWSCURRENT"}
	f.stages[*in.RemoveFromVersionId] = []string{"AWSPREVIOUS"}
	return &secretsmanager.UpdateSecretVersionStageOutput{}, nil
}

func (f *fakeSecrets) GetRandomPassword(context.Context, *secretsmanager.GetRandomPasswordInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetRandomPasswordOutput, error) {
	return &secretsmanager.GetRandomPasswordOutput{RandomPassword: aws.String("new-token")}, nil
}

type fakeCache struct {
	calls []elasticache.ModifyReplicationGroupInput
}

func (f *fakeCache) ModifyReplicationGroup(_ context.Context, in *elasticache.ModifyReplicationGroupInput, _ ...func(*elasticache.Options)) (*elasticache.ModifyReplicationGroupOutput, error) {
	f.calls = append(f.calls, *in)
	return &elasticache.ModifyReplicationGroupOutput{}, nil
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
	r := &Rotator{Kind: RedisAuth, Secrets: sec, Cache: cache, ReplicationGroup: "rg-1", TestToken: func(_ context.Context, tok string) error { tested = tok; return nil }}
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
	r := &Rotator{Kind: RedisAuth, Secrets: sec, Cache: &fakeCache{}, TestToken: func(context.Context, string) error { return errors.New("WRONGPASS") }}
	if err := run(t, r, "v2"); err == nil || has(sec.stages["v2"], "AWSCURRENT") {
		t.Fatalf("err %v, stages %v", err, sec.stages)
	}
}

func TestSessionsRotationRevalidatesAndRefusesABrokenSecret(t *testing.T) {
	good := &fakeSecrets{values: map[string]string{"v1": `{"sessionCookie":"abc"}`}, stages: map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}}
	if err := run(t, &Rotator{Kind: OnlyFansSessions, Secrets: good}, "v2"); err != nil || good.values["v2"] != good.values["v1"] {
		t.Fatalf("good sessions: %v, %v", err, good.values)
	}
	bad := &fakeSecrets{values: map[string]string{"v1": `{"sessionCookie":""}`}, stages: map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}}
	if err := run(t, &Rotator{Kind: OnlyFansSessions, Secrets: bad}, "v2"); err == nil {
		t.Fatal("a creator without a session passed rotation")
	}
}
