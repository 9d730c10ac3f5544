// Command probe is a Lambda function for lambdalocal's tests: it answers
// its environment, fails or outlasts its timeout when asked to.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type request struct {
	Fail  bool
	Sleep time.Duration
}

func main() {
	fmt.Println(`{"msg":"probe started"}`)
	lambda.Start(func(ctx context.Context, r request) (map[string]string, error) {
		if r.Fail {
			return nil, errors.New("asked to fail")
		}
		time.Sleep(r.Sleep)
		return map[string]string{"PROBE_SETTING": os.Getenv("PROBE_SETTING"), "HOME": os.Getenv("HOME"), "pid": fmt.Sprint(os.Getpid())}, nil
	})
}
