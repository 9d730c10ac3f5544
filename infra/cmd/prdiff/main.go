// Command prdiff diffs two synthesized cloud assemblies with the CDK CLI's
// own diff, stack by stack, offline (`make diff BASE=<git ref>`), and exits
// with prdiff.ExitDestructive when something would be replaced or deleted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/huntaze/message-pipeline/infra/prdiff"
)

func main() {
	base := flag.String("base", "", "cloud assembly of the base (cdk synth -o DIR)")
	head := flag.String("head", "", "cloud assembly of the head")
	cdk := flag.String("cdk", "cdk", "the CDK CLI")
	flag.Parse()
	if *base == "" || *head == "" {
		fmt.Fprintln(os.Stderr, "usage: prdiff -base DIR -head DIR [-cdk PATH]")
		os.Exit(2)
	}
	findings, err := prdiff.Run(context.Background(), prdiff.Options{CDK: *cdk, Base: *base, Head: *head, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "prdiff:", err)
		os.Exit(1)
	}
	if len(findings) == 0 {
		fmt.Println("\nprdiff: nothing would be replaced or deleted")
		return
	}
	fmt.Printf("\nDESTRUCTIVE: %d change(s) replace or delete something; approve each explicitly:\n", len(findings))
	for _, f := range findings {
		fmt.Println("  -", f)
	}
	os.Exit(prdiff.ExitDestructive)
}
