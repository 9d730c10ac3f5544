package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/internal/fallback"
	"github.com/huntaze/message-pipeline/internal/idempotency"
	"github.com/huntaze/message-pipeline/internal/queues"
	scrapersettings "github.com/huntaze/message-pipeline/scraper/settings"
)

// StorageProps configures the storage construct.
type StorageProps struct {
	Env Environment
}

// Storage holds the API's tables and the scraper's results bucket.
type Storage struct {
	constructs.Construct
	FallbackTable    awsdynamodb.Table
	IdempotencyTable awsdynamodb.Table
	// AttemptsTable keeps the scraper's attempt marks of clicks left
	// unresolved and the sent marks of messages sent (scraper.MarkStore):
	// what a Redis that forgets cannot lose.
	AttemptsTable awsdynamodb.Table
	Results       awss3.Bucket
	// CapturesKey encrypts failure captures (screenshots and pages of a
	// creator's logged-in chat): only the scraper task encrypts with it.
	CapturesKey awskms.Key
	// CapturesReaders is the operators' role that alone may decrypt (and
	// so read) captures: docs/operations.md "Who can read captures".
	CapturesReaders awsiam.Role
}

// CapturesReadersRole names the operators' role that may read captures in
// env.
func CapturesReadersRole(env string) string { return "huntaze-captures-readers-" + env }

// CapturesDays is how long failure captures are kept.
const CapturesDays = 7

// NewStorage creates the fallback, idempotency and scraper attempts tables (on demand, point in
// time recovery, TTL) and the results bucket (encrypted, TLS only, no public
// access, access-logged, screenshots and pages expire).
func NewStorage(scope constructs.Construct, id string, props StorageProps) *Storage {
	c := constructs.NewConstruct(scope, jsii.String(id))
	removal := awscdk.RemovalPolicy_DESTROY
	if props.Env.Name == queues.ProdEnvironment {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	table := func(id, name, key, ttl string) awsdynamodb.Table {
		return awsdynamodb.NewTable(c, jsii.String(id), &awsdynamodb.TableProps{
			TableName:                        jsii.String(queues.Name(name, props.Env.Name)),
			PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(key), Type: awsdynamodb.AttributeType_STRING},
			BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
			TimeToLiveAttribute:              jsii.String(ttl),
			PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
			Encryption:                       awsdynamodb.TableEncryption_AWS_MANAGED,
			RemovalPolicy:                    removal,
		})
	}
	s := &Storage{Construct: c}
	// TTL: the fallback store sets expiresAt only on replayed items; pending
	// items and creators' backlog items never expire (internal/fallback).
	s.FallbackTable = table("FallbackTable", "huntaze-message-fallback", fallback.KeyAttribute, fallback.TTLAttribute)
	// Each creator's items by acceptance sequence: the replay queues them in
	// that order (internal/fallback).
	s.FallbackTable.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(fallback.CreatorIndex),
		PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String(fallback.CreatorAttribute), Type: awsdynamodb.AttributeType_STRING},
		SortKey:        &awsdynamodb.Attribute{Name: jsii.String(fallback.SeqAttribute), Type: awsdynamodb.AttributeType_NUMBER},
		ProjectionType: awsdynamodb.ProjectionType_ALL,
	})
	s.IdempotencyTable = table("IdempotencyTable", "huntaze-idempotency", idempotency.KeyAttribute, idempotency.TTLAttribute)
	// One small item per message whose click was left unresolved, deleted
	// when settled; the TTL (the ledger's 14 days) removes what a failed
	// delete leaves.
	s.AttemptsTable = table("AttemptsTable", "huntaze-scraper-attempts", scrapersettings.AttemptsKeyAttribute, scrapersettings.AttemptsTTLAttribute)

	accessLogs := awss3.NewBucket(c, jsii.String("AccessLogs"), &awss3.BucketProps{
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_PREFERRED,
		LifecycleRules:    &[]*awss3.LifecycleRule{{Expiration: awscdk.Duration_Days(jsii.Number(90))}},
		RemovalPolicy:     removal,
		AutoDeleteObjects: jsii.Bool(removal == awscdk.RemovalPolicy_DESTROY),
	})
	suppress(accessLogs, Suppression{Rule: "AwsSolutions-S1", Reason: "This is the access-log bucket of the results bucket; logging it into itself would loop."})
	s.Results = awss3.NewBucket(c, jsii.String("Results"), &awss3.BucketProps{
		Encryption:             awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:             jsii.Bool(true),
		BlockPublicAccess:      awss3.BlockPublicAccess_BLOCK_ALL(),
		Versioned:              jsii.Bool(false),
		ServerAccessLogsBucket: accessLogs,
		ServerAccessLogsPrefix: jsii.String("results/"),
		LifecycleRules: &[]*awss3.LifecycleRule{
			// Screenshots and pages of a creator's chat are for debugging
			// failures, and no longer.
			{Id: jsii.String("failure-artifacts"), Prefix: jsii.String("artifacts/"), Expiration: awscdk.Duration_Days(jsii.Number(CapturesDays))},
			{Id: jsii.String("outcome-records"), Prefix: jsii.String("results/"), Expiration: awscdk.Duration_Days(jsii.Number(365))},
		},
		RemovalPolicy:     removal,
		AutoDeleteObjects: jsii.Bool(removal == awscdk.RemovalPolicy_DESTROY),
	})
	s.CapturesKey = awskms.NewKey(c, jsii.String("CapturesKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the scraper's failure captures (" + props.Env.Name + ")"),
		EnableKeyRotation: jsii.Bool(true), RemovalPolicy: removal,
	})
	// Only the named operators' role decrypts captures. The key keeps CDK's
	// administration statement (the account manages the key); a deny for
	// every other principal makes an IAM policy granting kms:Decrypt on it
	// elsewhere useless.
	s.CapturesReaders = awsiam.NewRole(c, jsii.String("CapturesReaders"), &awsiam.RoleProps{
		RoleName:           jsii.String(CapturesReadersRole(props.Env.Name)),
		Description:        jsii.String("Operators who read the scraper's failure captures (" + props.Env.Name + ")"),
		AssumedBy:          awsiam.NewAccountRootPrincipal(),
		MaxSessionDuration: awscdk.Duration_Hours(jsii.Number(1)),
	})
	s.CapturesReaders.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("s3:GetObject"), Resources: jsii.Strings(*s.Results.ArnForObjects(jsii.String("artifacts/*"))),
	}))
	s.CapturesReaders.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings("kms:Decrypt"), Resources: jsii.Strings(*s.CapturesKey.KeyArn()),
	}))
	suppress(s.CapturesReaders, Suppression{Rule: "AwsSolutions-IAM5", Reason: "Captures are keyed by creator and message at run time: the role reads the artifacts/ prefix, nothing else.",
		AppliesTo: []string{"regex:/^Resource::<.*Results.*\\.Arn>\\/artifacts\\/\\*$/"}})
	s.CapturesKey.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("DecryptByCapturesReadersOnly"), Effect: awsiam.Effect_DENY, Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions: jsii.Strings("kms:Decrypt"), Resources: jsii.Strings("*"),
		Conditions: &map[string]any{"ArnNotEquals": map[string]any{"aws:PrincipalArn": s.CapturesReaders.RoleArn()}},
	}), jsii.Bool(false))
	// A capture under any other key (or none) is refused.
	s.Results.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("CapturesUnderTheirKeyOnly"), Effect: awsiam.Effect_DENY, Principals: &[]awsiam.IPrincipal{awsiam.NewAnyPrincipal()},
		Actions: jsii.Strings("s3:PutObject"), Resources: jsii.Strings(*s.Results.ArnForObjects(jsii.String("artifacts/*"))),
		Conditions: &map[string]any{"StringNotEquals": map[string]any{"s3:x-amz-server-side-encryption-aws-kms-key-id": s.CapturesKey.KeyArn()}},
	}))
	return s
}
