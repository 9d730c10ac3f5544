// Command cdkapp is the CDK app: cdk.json builds it once and runs it.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/huntaze/message-pipeline/infra"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	env, err := infra.EnvironmentFromContext(app)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	infra.NewSystem(app, env)
	app.Synth(nil)
}
