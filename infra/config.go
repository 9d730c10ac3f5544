package infra

import (
	"fmt"
	"os"
	"sort"
)

// DefaultEnvironment is the environment `cdk synth` and `cdk deploy` use
// without `-c env=NAME`.
const DefaultEnvironment = "dev"

// DefaultRegion is where the system runs unless an environment says otherwise
// (seed 000, R1.4).
const DefaultRegion = "us-east-1"

// Environment is the typed configuration of one deployment.
type Environment struct {
	// Name is dev, staging or prod; it is part of stack and resource names.
	Name string
	// Account is the AWS account id; empty means the account of the
	// credentials `cdk` runs with (CDK_DEFAULT_ACCOUNT), so synth needs none.
	Account string
	Region  string
}

var environments = map[string]Environment{
	"dev":     {Name: "dev", Region: DefaultRegion},
	"staging": {Name: "staging", Region: DefaultRegion},
	"prod":    {Name: "prod", Region: DefaultRegion},
}

// EnvironmentNames lists the known environments, sorted.
func EnvironmentNames() []string {
	names := make([]string, 0, len(environments))
	for n := range environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupEnvironment returns the configuration of an environment by name;
// the account falls back to CDK_DEFAULT_ACCOUNT when the config has none.
func LookupEnvironment(name string) (Environment, error) {
	if name == "" {
		name = DefaultEnvironment
	}
	env, ok := environments[name]
	if !ok {
		return Environment{}, fmt.Errorf("unknown environment %q (known: %v); pass -c env=NAME", name, EnvironmentNames())
	}
	if env.Account == "" {
		env.Account = os.Getenv("CDK_DEFAULT_ACCOUNT")
	}
	return env, nil
}

// StackName names a stack of an environment: "Huntaze-<Env>-<Part>".
func (e Environment) StackName(part string) string {
	return fmt.Sprintf("Huntaze-%s-%s", e.Name, part)
}
