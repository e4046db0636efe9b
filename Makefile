# labrun: a lab on kind clusters for the Kubernetes "DNS lookups take 5 s" problem.
#   make deps                     prepare this machine (apt packages, Docker, the runc wrapper)
#   make lab SCENARIO=baseline    build images if needed, run scenarios/$(SCENARIO).yaml, print the report's path
#   make test                     every test tier: unit, integration (root, network namespaces), e2e on kind
#   make nightly-local SCENARIO=baseline SHARDS=2
#                                 the nightly workflow's steps here: plan, each shard in turn, merge, JUnit, site;
#                                 exits with the merged run's verdict (docs/nightly.md)

SHELL      := /bin/bash
SCENARIO   ?= baseline
SHARDS     ?= 2
GO         ?= go
LABRUN     := bin/labrun
export GOFLAGS := -buildvcs=false
# The build's name in `labrun version` and env.json (labrun merge compares it).
REVISION   := $(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)

.PHONY: all deps build images lab nightly-local test test-unit test-integration test-e2e vet clean bench

all: build

deps:
	@hack/deps.sh

build:
	@mkdir -p bin
	$(GO) build -ldflags "-X labrun.dev/labrun/internal/version.Revision=$(REVISION)" -o $(LABRUN) ./cmd/labrun

images: deps build
	$(LABRUN) images build

lab: deps build
	$(LABRUN) run scenarios/$(SCENARIO).yaml

# The nightly (.github/workflows/nightly.yml) on this machine, shard after shard,
# into results/nightly-local-<time>/ (hack/nightly-local.sh).
nightly-local: images
	hack/nightly-local.sh $(SCENARIO) $(SHARDS)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...

# Unit tests: no root, no Docker, seconds; then the scenario loader fuzzed for
# 30 s (go test fuzzes one package at a time). New inputs the fuzzer keeps go to
# the Go cache, a failing one to pkg/scenario/testdata/fuzz (commit it with the
# fix). Minimizing a new input may take 5 s, not the default 60 s that would
# eat the whole budget.
test-unit:
	$(GO) test -short -count=1 ./...
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s -fuzzminimizetime 5s ./pkg/scenario

# Integration tests: root, network namespaces the tests make and remove, real packets.
test-integration:
	$(GO) test -count=1 -p 1 -run 'Integration' ./...

# End-to-end on real kind clusters from the offline images (built first if missing).
test-e2e: images
	$(GO) test -tags e2e -count=1 -p 1 -timeout 60m -v ./test/e2e/...

test: deps vet test-unit test-integration test-e2e

clean: build
	$(LABRUN) clean
