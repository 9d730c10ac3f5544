package infra

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/jsii-runtime-go"
)

// imageHash synthesizes a task definition holding scraperImage(root) and
// returns the image asset's hash as the template renders it (the image tag).
func imageHash(t *testing.T, root string) string {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	stack := awscdk.NewStack(app, jsii.String("Image"), nil)
	task := awsecs.NewFargateTaskDefinition(stack, jsii.String("Task"), nil)
	task.AddContainer(jsii.String("scraper"), &awsecs.ContainerDefinitionOptions{Image: scraperImage(root)})
	tpl := js(assertions.Template_FromStack(stack, nil).ToJSON())
	m := regexp.MustCompile(`:([0-9a-f]{64})`).FindStringSubmatch(tpl)
	if m == nil {
		t.Fatalf("no image asset hash in %s", tpl)
	}
	return m[1]
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTheScraperImageHashFollowsOnlyTheScrapersBuildInputs(t *testing.T) {
	// GIVEN a copy of the repository's layout with the real .dockerignore
	// and Dockerfile, and one file in every other part of the repository
	root := t.TempDir()
	for _, f := range []string{".dockerignore", "scraper/Dockerfile", "go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(RepoRoot(), f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(root, f), string(b))
	}
	files := map[string]string{
		"scraper/processor.go":             "package scraper\n",
		"scraper/onlyfans/profiles/x.json": "{}\n",
		"internal/ratelimit/limiter.go":    "package ratelimit\n",
		"scraper/processor_test.go":        "package scraper\n",
		"docs/runbook.md":                  "# Runbook\n",
		"README.md":                        "# Huntaze\n",
		"infra/alarms.go":                  "package infra\n",
		"functions/api/main.go":            "package main\n",
		"test/e2e/e2e_test.go":             "package e2e\n",
		"Makefile":                         "test:\n",
		"benchreport":                      "\x7fELF a build output\n",
		".github/workflows/pr.yml":         "name: pr\n",
	}
	for f, content := range files {
		write(t, filepath.Join(root, f), content)
	}
	base := imageHash(t, root)

	// WHEN only files outside the scraper's build inputs change
	// THEN the image hash stays (no rebuild, no task definition replacement)
	for _, f := range []string{"docs/runbook.md", "README.md", "infra/alarms.go", "functions/api/main.go", "test/e2e/e2e_test.go", "Makefile", "benchreport", ".github/workflows/pr.yml", "scraper/processor_test.go"} {
		write(t, filepath.Join(root, f), files[f]+"// changed\n")
		if got := imageHash(t, root); got != base {
			t.Errorf("changing %s changed the image hash %s → %s", f, base, got)
		}
		write(t, filepath.Join(root, f), files[f])
	}
	write(t, filepath.Join(root, "docs/new-page.md"), "a new page\n")
	if got := imageHash(t, root); got != base {
		t.Errorf("adding docs/new-page.md changed the image hash")
	}

	// WHEN a build input of the scraper changes
	// THEN the hash changes (the image is rebuilt)
	for _, f := range []string{"scraper/processor.go", "scraper/onlyfans/profiles/x.json", "internal/ratelimit/limiter.go", "go.sum", "scraper/Dockerfile"} {
		orig, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(root, f), string(orig)+"\n# changed\n")
		if got := imageHash(t, root); got == base {
			t.Errorf("changing %s left the image hash at %s", f, base)
		}
		write(t, filepath.Join(root, f), string(orig))
	}
}
