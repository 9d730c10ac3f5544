package infra

import (
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awselasticache"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
	"github.com/huntaze/message-pipeline/internal/redisconn"
)

// CachePort is not Redis's default 6379 (AwsSolutions-AEC5).
const CachePort = 6380

// CacheProps configures the cache.
type CacheProps struct {
	Env     Environment
	Network *Network
}

// Cache is the Redis the limiter's token state and the scraper's ledger
// live in.
type Cache struct {
	constructs.Construct
	ReplicationGroup awselasticache.CfnReplicationGroup
	SecurityGroup    awsec2.SecurityGroup
	AuthToken        awssecretsmanager.Secret
	// Clients is the security group of the cache's clients: only members
	// reach the cache port.
	Clients awsec2.SecurityGroup
	Key     awskms.Key
	// Rotation rotates the AUTH token (its failures are alarmed).
	Rotation *GoFunction
}

// Endpoint returns host:port of the primary.
func (c *Cache) Endpoint() *string {
	return awscdk.Fn_Join(jsii.String(":"), &[]*string{c.ReplicationGroup.AttrPrimaryEndPointAddress(), c.ReplicationGroup.AttrPrimaryEndPointPort()})
}

// ClientSettings is how a component reaches this Redis: TLS, the AUTH
// token from its secret.
func (c *Cache) ClientSettings() redisconn.Settings {
	return redisconn.Settings{Addr: *c.Endpoint(), TLS: true, AuthSecretARN: *c.AuthToken.SecretArn(), Timeout: time.Second}
}

// NewCache creates a Redis 7 replication group with encryption in transit
// and at rest, AUTH from a generated secret, a non-default port, and
// Multi-AZ with automatic failover where the environment asks for it.
func NewCache(scope constructs.Construct, id string, props CacheProps) *Cache {
	c := constructs.NewConstruct(scope, jsii.String(id))
	key := awskms.NewKey(c, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the Redis AUTH token and the cache at rest (" + props.Env.Name + ")"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
	})
	token := awssecretsmanager.NewSecret(c, jsii.String("AuthToken"), &awssecretsmanager.SecretProps{
		Description:   jsii.String("Redis AUTH token of the rate limiter cache (" + props.Env.Name + ")"),
		EncryptionKey: key,
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength: jsii.Number(64),
			// ElastiCache AUTH tokens allow printable ASCII except these.
			ExcludeCharacters:  jsii.String(`"@/\ '`),
			ExcludePunctuation: jsii.Bool(true),
		},
	})
	clients := awsec2.NewSecurityGroup(c, jsii.String("Clients"), &awsec2.SecurityGroupProps{
		Vpc: props.Network.Vpc, Description: jsii.String("Clients of the Redis cache (limiter, scraper)"), AllowAllOutbound: jsii.Bool(true),
	})
	sg := awsec2.NewSecurityGroup(c, jsii.String("SecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: props.Network.Vpc, Description: jsii.String("Redis cache: only its clients, only its port"), AllowAllOutbound: jsii.Bool(false),
	})
	sg.AddIngressRule(clients, awsec2.Port_Tcp(jsii.Number(CachePort)), jsii.String("Redis from the limiter and the scraper"), nil)

	var subnetIDs []any
	for _, s := range *props.Network.Vpc.SelectSubnets(&awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}).SubnetIds {
		subnetIDs = append(subnetIDs, s)
	}
	subnets := awselasticache.NewCfnSubnetGroup(c, jsii.String("Subnets"), &awselasticache.CfnSubnetGroupProps{
		Description: jsii.String("Private subnets of the Redis cache"), SubnetIds: &subnetIDs,
	})
	clusters := 1
	if props.Env.MultiAZ {
		clusters = 2
	}
	// noeviction: the limiter's approval logs carry a TTL, and volatile-lru
	// (the default) would drop them under memory pressure, forgetting the
	// window while the fence stays. Full memory fails the writes instead, and
	// the limiter fails closed (messages wait).
	params := awselasticache.NewCfnParameterGroup(c, jsii.String("Parameters"), &awselasticache.CfnParameterGroupProps{
		CacheParameterGroupFamily: jsii.String("redis7"),
		Description:               jsii.String("huntaze rate limiter: never evict"),
		Properties:                &map[string]*string{"maxmemory-policy": jsii.String("noeviction")},
	})
	rg := awselasticache.NewCfnReplicationGroup(c, jsii.String("Redis"), &awselasticache.CfnReplicationGroupProps{
		CacheParameterGroupName:     params.Ref(),
		ReplicationGroupDescription: jsii.String("huntaze rate limiter " + props.Env.Name),
		Engine:                      jsii.String("redis"),
		EngineVersion:               jsii.String("7.1"),
		CacheNodeType:               jsii.String(props.Env.CacheNodeType),
		NumCacheClusters:            jsii.Number(float64(clusters)),
		MultiAzEnabled:              jsii.Bool(props.Env.MultiAZ),
		AutomaticFailoverEnabled:    jsii.Bool(props.Env.MultiAZ),
		Port:                        jsii.Number(CachePort),
		TransitEncryptionEnabled:    jsii.Bool(true),
		AtRestEncryptionEnabled:     jsii.Bool(true),
		KmsKeyId:                    key.KeyId(),
		AuthToken:                   token.SecretValue().UnsafeUnwrap(),
		CacheSubnetGroupName:        subnets.Ref(),
		SecurityGroupIds:            &[]*string{sg.SecurityGroupId()},
		SnapshotRetentionLimit:      jsii.Number(1),
	})
	rotationSG := awsec2.NewSecurityGroup(c, jsii.String("RotationSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc: props.Network.Vpc, Description: jsii.String("Redis AUTH rotation function"), AllowAllOutbound: jsii.Bool(true),
	})
	stack := awscdk.Stack_Of(c)
	rotation := newRotation(c, "TokenRotation", rotationProps{
		Env: props.Env, Secret: token, Name: "huntaze-redis-auth-rotation",
		Settings: rotator.Settings{
			Kind: rotator.RedisAuth, ReplicationGroup: *rg.Ref(), EnforceAfter: rotator.DefaultEnforceAfter, ApplyWait: rotator.DefaultApplyWait, ApplyPoll: rotator.DefaultApplyPoll, SessionRenewAfter: rotator.DefaultSessionRenewAfter,
			RedisAddr: *awscdk.Fn_Join(jsii.String(":"), &[]*string{rg.AttrPrimaryEndPointAddress(), rg.AttrPrimaryEndPointPort()}),
		},
		Vpc: props.Network.Vpc, SecurityGroups: []awsec2.ISecurityGroup{rotationSG, clients},
	})
	allow(rotation.Role, []string{"elasticache:DescribeReplicationGroups", "elasticache:ModifyReplicationGroup"},
		jsii.String("arn:"+*stack.Partition()+":elasticache:"+*stack.Region()+":"+*stack.Account()+":replicationgroup:"+*rg.Ref()))
	if !props.Env.MultiAZ {
		suppress(rg, Suppression{Rule: "AwsSolutions-AEC4", Reason: "dev and staging run one cache node to save cost; prod is Multi-AZ with automatic failover (config.go)."})
	}
	return &Cache{Construct: c, ReplicationGroup: rg, SecurityGroup: sg, AuthToken: token, Clients: clients, Key: key, Rotation: rotation}
}
