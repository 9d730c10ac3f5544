package rotator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticache"
	ectypes "github.com/aws/aws-sdk-go-v2/service/elasticache/types"
	"github.com/redis/go-redis/v9"

	"github.com/huntaze/message-pipeline/internal/redisconn"
	"github.com/huntaze/message-pipeline/test/harness"
)

// aclCache is ElastiCache's AUTH token model on a real redis-server: the
// default user's passwords are the replication group's tokens. ROTATE adds
// the new token and keeps the old (ElastiCache keeps at most two: a third
// is refused until a SET); SET makes the new token the only one. The ACL
// commands run as a separate admin user, as ElastiCache's control plane is
// not a Redis client.
type aclCache struct {
	admin *redis.Client
	calls []ectypes.AuthTokenUpdateStrategyType
}

func (c *aclCache) ModifyReplicationGroup(ctx context.Context, in *elasticache.ModifyReplicationGroupInput, _ ...func(*elasticache.Options)) (*elasticache.ModifyReplicationGroupOutput, error) {
	c.calls = append(c.calls, in.AuthTokenUpdateStrategy)
	token := aws.ToString(in.AuthToken)
	switch in.AuthTokenUpdateStrategy {
	case ectypes.AuthTokenUpdateStrategyTypeRotate:
		if n := c.tokens(ctx); n >= 2 {
			return nil, fmt.Errorf("InvalidParameterCombination: the group already has %d AUTH tokens; SET one first", n)
		}
		return &elasticache.ModifyReplicationGroupOutput{}, c.admin.Do(ctx, "ACL", "SETUSER", "default", "on", ">"+token).Err()
	case ectypes.AuthTokenUpdateStrategyTypeSet:
		return &elasticache.ModifyReplicationGroupOutput{}, c.admin.Do(ctx, "ACL", "SETUSER", "default", "on", "resetpass", ">"+token).Err()
	}
	return nil, fmt.Errorf("strategy %q not modelled", in.AuthTokenUpdateStrategy)
}

// DescribeReplicationGroups: the model applies a modify at once, so the
// group is always available (asyncCache below is the asynchronous one).
func (c *aclCache) DescribeReplicationGroups(context.Context, *elasticache.DescribeReplicationGroupsInput, ...func(*elasticache.Options)) (*elasticache.DescribeReplicationGroupsOutput, error) {
	return &elasticache.DescribeReplicationGroupsOutput{ReplicationGroups: []ectypes.ReplicationGroup{{Status: aws.String("available")}}}, nil
}

func (c *aclCache) tokens(ctx context.Context) int {
	u, err := c.admin.Do(ctx, "ACL", "GETUSER", "default").Result()
	if err != nil {
		return -1
	}
	fields, _ := u.(map[any]any)
	if fields == nil { // RESP2: a flat list
		l, _ := u.([]any)
		fields = map[any]any{}
		for i := 0; i+1 < len(l); i += 2 {
			fields[l[i]] = l[i+1]
		}
	}
	pw, _ := fields["passwords"].([]any)
	return len(pw)
}

// auth opens a new connection with token (each call AUTHs afresh).
func auth(ctx context.Context, addr, token string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: token, MaxRetries: -1})
	defer c.Close()
	return c.Ping(ctx).Err()
}

func wrongpass(err error) bool { return err != nil && strings.Contains(err.Error(), "WRONGPASS") }

func TestRedisRotation_TheOldTokenStopsWorkingOnceEveryClientUsesTheNewOne(t *testing.T) {
	ctx := context.Background()
	// GIVEN a real redis-server whose AUTH token is the secret's current one
	srv := harness.StartRedis(t)
	bootstrap := srv.Client()
	if err := bootstrap.Do(ctx, "ACL", "SETUSER", "admin", "on", ">admin-password-of-the-model", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	if err := bootstrap.Do(ctx, "ACL", "SETUSER", "default", "on", "resetpass", ">old-token").Err(); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "admin", Password: "admin-password-of-the-model"})
	t.Cleanup(func() { _ = admin.Close() })
	cache := &aclCache{admin: admin}
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	sec := &fakeSecrets{values: map[string]string{"v1": "old-token"}, stages: map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}, now: now}
	r := &Rotator{Kind: RedisAuth, ApplyWait: DefaultApplyWait, ApplyPoll: DefaultApplyPoll, Secrets: sec, Cache: cache, ReplicationGroup: "rg", EnforceAfter: DefaultEnforceAfter, Now: now,
		TestToken: func(ctx context.Context, tok string) error { return auth(ctx, srv.Addr, tok) }}
	// AND a long-running client (the scraper) that reads the token through
	// redisconn's provider, its cache on the same clock
	provider := &redisconn.SecretToken{Secrets: sec, SecretID: "s", Refresh: redisconn.TokenRefresh, Now: now}
	client := func() error { // a new connection, as after ConnMaxLifetime
		c := redis.NewClient(&redis.Options{Addr: srv.Addr, CredentialsProviderContext: provider.Credentials, MaxRetries: -1})
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	if err := client(); err != nil {
		t.Fatalf("client before the rotation: %v", err)
	}

	// WHEN the rotation runs its four steps
	if err := run(t, r, "v2"); err != nil {
		t.Fatal(err)
	}
	newToken := sec.values["v2"]
	// THEN both tokens work: clients holding the old one keep working
	if err := auth(ctx, srv.Addr, newToken); err != nil {
		t.Fatalf("new token after ROTATE: %v", err)
	}
	if err := auth(ctx, srv.Addr, "old-token"); err != nil {
		t.Fatalf("old token right after the rotation (clients still hold it): %v", err)
	}
	// AND the enforce step, run before clients can all have moved, waits
	clock = clock.Add(redisconn.MaxTokenAge - time.Minute)
	if err := r.Handle(ctx, Event{SecretID: "s", Step: EnforceStep}); err != nil {
		t.Fatal(err)
	}
	if err := auth(ctx, srv.Addr, "old-token"); err != nil || len(cache.calls) != 1 {
		t.Fatalf("before EnforceAfter: old token %v, ElastiCache calls %v", err, cache.calls)
	}
	// AND the long-running client moved to the new token by itself once its
	// cached token expired
	if err := client(); err != nil {
		t.Fatalf("client after its refresh: %v", err)
	}
	if _, tok, _ := provider.Credentials(ctx); tok != newToken {
		t.Fatal("the client's provider still holds the old token")
	}

	// WHEN the enforce step runs after EnforceAfter
	clock = clock.Add(DefaultEnforceAfter)
	if err := r.Handle(ctx, Event{SecretID: "s", Step: EnforceStep}); err != nil {
		t.Fatal(err)
	}
	// THEN the old token is refused, the new one works, the client too
	if err := auth(ctx, srv.Addr, "old-token"); !wrongpass(err) {
		t.Fatalf("old token after SET: %v, want WRONGPASS", err)
	}
	if err := auth(ctx, srv.Addr, newToken); err != nil {
		t.Fatalf("new token after SET: %v", err)
	}
	if err := client(); err != nil {
		t.Fatalf("client after SET: %v", err)
	}
	if !has(sec.stages["v2"], EnforcedStage) || len(cache.calls) != 2 || cache.calls[1] != ectypes.AuthTokenUpdateStrategyTypeSet {
		t.Fatalf("stages %v, ElastiCache calls %v", sec.stages, cache.calls)
	}
	// AND enforcing again changes nothing
	if err := r.Handle(ctx, Event{SecretID: "s", Step: EnforceStep}); err != nil || len(cache.calls) != 2 {
		t.Fatalf("second enforce: %v, calls %v", err, cache.calls)
	}

	// AND the next rotation can ROTATE again (one token before it, two after)
	sec.stages["v3"] = []string{"AWSPENDING"}
	if err := run(t, r, "v3"); err != nil {
		t.Fatalf("next rotation: %v", err)
	}
	if err := auth(ctx, srv.Addr, newToken); err != nil {
		t.Fatalf("the previous token right after the next rotation: %v", err)
	}
	clock = clock.Add(DefaultEnforceAfter)
	if err := r.Handle(ctx, Event{SecretID: "s", Step: EnforceStep}); err != nil {
		t.Fatal(err)
	}
	if err := auth(ctx, srv.Addr, newToken); !wrongpass(err) {
		t.Fatalf("v2's token after v3 was enforced: %v, want WRONGPASS", err)
	}
	if !has(sec.stages["v3"], EnforcedStage) || has(sec.stages["v2"], EnforcedStage) {
		t.Fatalf("ENFORCED label: %v", sec.stages)
	}
}

func TestRedisRotation_WithoutSETTheOldTokenStaysAndTheNextRotationFails(t *testing.T) {
	// The model can fail: two rotations with no enforce step in between
	// leave the old token valid and the second ROTATE refused.
	ctx := context.Background()
	srv := harness.StartRedis(t)
	bootstrap := srv.Client()
	for _, cmd := range [][]any{{"ACL", "SETUSER", "admin", "on", ">admin-pw", "~*", "&*", "+@all"}, {"ACL", "SETUSER", "default", "on", "resetpass", ">old-token"}} {
		if err := bootstrap.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "admin", Password: "admin-pw"})
	t.Cleanup(func() { _ = admin.Close() })
	sec := &fakeSecrets{values: map[string]string{"v1": "old-token"}, stages: map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}}
	r := &Rotator{Kind: RedisAuth, ApplyWait: DefaultApplyWait, ApplyPoll: DefaultApplyPoll, Secrets: sec, Cache: &aclCache{admin: admin}, ReplicationGroup: "rg"}
	if err := run(t, r, "v2"); err != nil {
		t.Fatal(err)
	}
	if err := auth(ctx, srv.Addr, "old-token"); err != nil {
		t.Fatalf("old token without SET: %v (it should still work: that is the finding)", err)
	}
	sec.stages["v3"] = []string{"AWSPENDING"}
	if err := run(t, r, "v3"); err == nil || !strings.Contains(err.Error(), "already has 2 AUTH tokens") {
		t.Fatalf("second rotation without SET: %v", err)
	}
}

// asyncCache is aclCache as ElastiCache really answers: ModifyReplicationGroup
// returns at once with the group "modifying" and the token change pending
// (PendingModifiedValues.AuthTokenStatus ROTATING or SETTING); it takes effect
// only later, here when someone asks how the group is
// (DescribeReplicationGroups, the call that shows "available" again). The
// synchronous aclCache is kinder than AWS.
type asyncCache struct {
	aclCache
	pending []*elasticache.ModifyReplicationGroupInput
}

func (c *asyncCache) ModifyReplicationGroup(_ context.Context, in *elasticache.ModifyReplicationGroupInput, _ ...func(*elasticache.Options)) (*elasticache.ModifyReplicationGroupOutput, error) {
	c.calls = append(c.calls, in.AuthTokenUpdateStrategy)
	c.pending = append(c.pending, in)
	return &elasticache.ModifyReplicationGroupOutput{ReplicationGroup: &ectypes.ReplicationGroup{Status: aws.String("modifying"),
		PendingModifiedValues: &ectypes.ReplicationGroupPendingModifiedValues{AuthTokenStatus: ectypes.AuthTokenUpdateStatusRotating}}}, nil
}

func (c *asyncCache) DescribeReplicationGroups(ctx context.Context, _ *elasticache.DescribeReplicationGroupsInput, _ ...func(*elasticache.Options)) (*elasticache.DescribeReplicationGroupsOutput, error) {
	for _, in := range c.pending {
		c.calls = c.calls[:len(c.calls)-1] // aclCache records it again
		if _, err := c.aclCache.ModifyReplicationGroup(ctx, in); err != nil {
			return nil, err
		}
	}
	c.pending = nil
	return &elasticache.DescribeReplicationGroupsOutput{ReplicationGroups: []ectypes.ReplicationGroup{{Status: aws.String("available")}}}, nil
}

func startACLRedis(t *testing.T) (addr string, admin *redis.Client) {
	t.Helper()
	ctx := context.Background()
	srv := harness.StartRedis(t)
	for _, cmd := range [][]any{{"ACL", "SETUSER", "admin", "on", ">admin-pw", "~*", "&*", "+@all"}, {"ACL", "SETUSER", "default", "on", "resetpass", ">old-token"}} {
		if err := srv.Client().Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	admin = redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "admin", Password: "admin-pw"})
	t.Cleanup(func() { _ = admin.Close() })
	return srv.Addr, admin
}

// Review of issue 24: setSecret returns as soon as ElastiCache accepted the
// ROTATE, and testSecret AUTHs with the new token at once: against
// ElastiCache, where the change is still pending, the test fails and the
// rotation stops with AWSPENDING left on the secret (which also holds the
// enforce step off: "a rotation is under way").
func TestRedisRotation_CompletesWhenElastiCacheAppliesTheTokenLater(t *testing.T) {
	ctx := context.Background()
	// GIVEN a real redis-server behind ElastiCache's asynchronous modify
	addr, admin := startACLRedis(t)
	cache := &asyncCache{aclCache: aclCache{admin: admin}}
	sec := &fakeSecrets{values: map[string]string{"v1": "old-token"}, stages: map[string][]string{"v1": {"AWSCURRENT"}, "v2": {"AWSPENDING"}}}
	r := &Rotator{Kind: RedisAuth, ApplyWait: DefaultApplyWait, ApplyPoll: DefaultApplyPoll, Secrets: sec, Cache: cache, ReplicationGroup: "rg", EnforceAfter: DefaultEnforceAfter,
		TestToken: func(ctx context.Context, tok string) error { return auth(ctx, addr, tok) }}
	// WHEN the rotation runs its four steps
	err := run(t, r, "v2")
	// THEN it completes and the new current token works
	if err != nil {
		t.Fatalf("rotation against an asynchronous ElastiCache: %v (stages %v)", err, sec.stages)
	}
	if err := auth(ctx, addr, sec.values["v2"]); err != nil {
		t.Fatalf("the new current token: %v", err)
	}
}

// Review of issue 24: the enforce step labels the version ENFORCED and logs
// "only the current token is accepted" as soon as ElastiCache accepted the
// SET, while the old token still works (the change is pending): a success
// reported before the credential changed.
func TestRedisRotation_EnforcedOnlyOnceTheOldTokenIsRefused(t *testing.T) {
	ctx := context.Background()
	// GIVEN a rotation done an EnforceAfter ago: old and new tokens both valid
	addr, admin := startACLRedis(t)
	if err := admin.Do(ctx, "ACL", "SETUSER", "default", ">new-token").Err(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rotated := now.Add(-2 * DefaultEnforceAfter)
	sec := &fakeSecrets{values: map[string]string{"v1": "old-token", "v2": "new-token"}, stages: map[string][]string{"v1": {"AWSPREVIOUS"}, "v2": {"AWSCURRENT"}}, lastRotated: &rotated}
	cache := &asyncCache{aclCache: aclCache{admin: admin}}
	r := &Rotator{Kind: RedisAuth, ApplyWait: DefaultApplyWait, ApplyPoll: DefaultApplyPoll, Secrets: sec, Cache: cache, ReplicationGroup: "rg", EnforceAfter: DefaultEnforceAfter, Now: func() time.Time { return now },
		TestToken: func(ctx context.Context, tok string) error { return auth(ctx, addr, tok) }}
	// WHEN the enforce step runs (against ElastiCache's asynchronous modify)
	if err := r.Handle(ctx, Event{SecretID: "s", Step: EnforceStep}); err != nil {
		t.Fatal(err)
	}
	// THEN a version labelled ENFORCED means the old token is refused
	if has(sec.stages["v2"], EnforcedStage) {
		if err := auth(ctx, addr, "old-token"); !wrongpass(err) {
			t.Fatalf("v2 labelled %s while the old token still works (%v): SET still pending", EnforcedStage, err)
		}
	}
}
