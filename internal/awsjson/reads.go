package awsjson

import (
	"context"
	"errors"
	"fmt"
)

// Parameter is an SSM parameter read with GetParameter: a
// featureflag.Source.
type Parameter struct {
	Client *Client // of SSM
	Name   string
}

// Get returns the parameter's value; found is false when it does not exist.
func (p Parameter) Get(ctx context.Context) (string, bool, error) {
	var out struct{ Parameter struct{ Value *string } }
	err := p.Client.Call(ctx, "GetParameter", map[string]any{"Name": p.Name}, &out)
	var apiErr *Error
	if errors.As(err, &apiErr) && apiErr.Code == "ParameterNotFound" {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if out.Parameter.Value == nil {
		return "", true, nil
	}
	return *out.Parameter.Value, true, nil
}

// Secrets reads Secrets Manager secrets' current values: a
// redisclient.SecretReader.
type Secrets struct {
	Client *Client // of Secrets Manager
}

// SecretString returns the AWSCURRENT SecretString of the secret id. The
// value is never part of an error.
func (s Secrets) SecretString(ctx context.Context, id string) (string, error) {
	var out struct{ SecretString *string }
	if err := s.Client.Call(ctx, "GetSecretValue", map[string]any{"SecretId": id}, &out); err != nil {
		return "", err
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("GetSecretValue %s: no SecretString (binary secrets are not read)", id)
	}
	return *out.SecretString, nil
}
