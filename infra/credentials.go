package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/functions/rotation/rotator"
)

// CredentialsProps configures the OnlyFans credentials secret.
type CredentialsProps struct {
	Env Environment
}

// Credentials is the secret holding each creator's OnlyFans session
// ({"<creator>": {"sessionCookie": "..."}}), encrypted with its own key.
type Credentials struct {
	constructs.Construct
	Secret awssecretsmanager.Secret
	Key    awskms.Key
}

// NewCredentials creates the secret and its key (seed 003 R8.5).
func NewCredentials(scope constructs.Construct, id string, props CredentialsProps) *Credentials {
	c := constructs.NewConstruct(scope, jsii.String(id))
	key := awskms.NewKey(c, jsii.String("Key"), &awskms.KeyProps{
		Description: jsii.String("Encrypts the OnlyFans creator sessions (" + props.Env.Name + ")"), EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	secret := awssecretsmanager.NewSecret(c, jsii.String("Secret"), &awssecretsmanager.SecretProps{
		SecretName:        jsii.String("huntaze/" + props.Env.Name + "/onlyfans-credentials"),
		Description:       jsii.String("OnlyFans session per creator; the scraper re-reads it every 5 minutes"),
		EncryptionKey:     key,
		SecretStringValue: awscdk.SecretValue_UnsafePlainText(jsii.String("{}")),
	})
	// OnlyFans has no API to mint sessions: the rotation re-validates the
	// secret every 90 days (functions/rotation); renewal is manual (README).
	newRotation(c, "Rotation", rotationProps{Env: props.Env, Secret: secret, Settings: rotator.Settings{Kind: rotator.OnlyFansSessions}, Name: "huntaze-onlyfans-sessions-rotation"})
	return &Credentials{Construct: c, Secret: secret, Key: key}
}
