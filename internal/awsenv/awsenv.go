// Package awsenv builds a Lambda's AWS SDK configuration from its
// environment only: the region and the execution role's credentials Lambda
// puts there, and AWS_ENDPOINT_URL[_<SERVICE>] for local endpoints (the
// devstack's emulators). config.LoadDefaultConfig would also link the
// shared-file, SSO, STS, IMDS and process credential chains, which a
// Lambda never uses.
package awsenv

import (
	"context"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Config is the configuration environ describes. Missing credentials are
// not an error here: retrieving them fails, as with the default chain, and
// each setup decides what that means.
func Config(environ map[string]string) aws.Config {
	region := environ["AWS_REGION"]
	if region == "" {
		region = environ["AWS_DEFAULT_REGION"]
	}
	cfg := aws.Config{
		Region: region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			environ["AWS_ACCESS_KEY_ID"], environ["AWS_SECRET_ACCESS_KEY"], environ["AWS_SESSION_TOKEN"])),
		ConfigSources: []any{Endpoints(environ)},
	}
	if u := environ["AWS_ENDPOINT_URL"]; u != "" {
		cfg.BaseEndpoint = aws.String(u)
	}
	if n, err := strconv.Atoi(environ["AWS_MAX_ATTEMPTS"]); err == nil && n > 0 {
		cfg.RetryMaxAttempts = n
	}
	return cfg
}

// Endpoints are the AWS_ENDPOINT_URL_<SERVICE> variables, read as the SDK
// reads them: the service id upper-cased, spaces as underscores
// ("Secrets Manager": AWS_ENDPOINT_URL_SECRETS_MANAGER).
type Endpoints map[string]string

// GetServiceBaseEndpoint is the lookup the SDK's clients make among a
// configuration's sources.
func (e Endpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	u := e["AWS_ENDPOINT_URL_"+strings.ToUpper(strings.ReplaceAll(sdkID, " ", "_"))]
	return u, u != "", nil
}

// ServiceEndpoint is the endpoint cfg gives the service sdkID: its own
// source's, else the configuration's BaseEndpoint, else "" (the service's
// public endpoint).
func ServiceEndpoint(ctx context.Context, cfg aws.Config, sdkID string) string {
	for _, src := range cfg.ConfigSources {
		if p, ok := src.(interface {
			GetServiceBaseEndpoint(context.Context, string) (string, bool, error)
		}); ok {
			if u, found, err := p.GetServiceBaseEndpoint(ctx, sdkID); err == nil && found {
				return u
			}
		}
	}
	return aws.ToString(cfg.BaseEndpoint)
}
