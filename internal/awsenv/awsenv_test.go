package awsenv_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/huntaze/message-pipeline/internal/awsenv"
)

func TestConfigTakesLambdasRegionCredentialsAndLocalEndpoints(t *testing.T) {
	ctx := context.Background()
	cfg := awsenv.Config(map[string]string{
		"AWS_REGION": "eu-west-3", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOKEN",
		"AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:2",
	})
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-3" || creds.AccessKeyID != "AKID" || creds.SecretAccessKey != "SECRET" || creds.SessionToken != "TOKEN" {
		t.Fatalf("region %q, credentials %q/%q", cfg.Region, creds.AccessKeyID, creds.SessionToken)
	}
	for id, want := range map[string]string{"SQS": "http://127.0.0.1:1", "Secrets Manager": "http://127.0.0.1:2", "DynamoDB": ""} {
		if got := awsenv.ServiceEndpoint(ctx, cfg, id); got != want {
			t.Errorf("endpoint of %s = %q, want %q", id, got, want)
		}
	}
}

func TestConfigWithoutCredentialsFailsToRetrieveThem(t *testing.T) {
	cfg := awsenv.Config(map[string]string{"AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:3"})
	if _, err := cfg.Credentials.Retrieve(context.Background()); err == nil {
		t.Fatal("credentials retrieved from an environment without any")
	}
	if cfg.Region != "us-east-1" || awsenv.ServiceEndpoint(context.Background(), cfg, "SSM") != "http://127.0.0.1:3" || aws.ToString(cfg.BaseEndpoint) == "" {
		t.Fatalf("region %q, base endpoint %v", cfg.Region, cfg.BaseEndpoint)
	}
}
