# svcnet: `make demo` runs the main job, `make test` runs every test. `make help` lists the rest.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
STATE_DIR ?= $(CURDIR)/e2e/.state
export SVCNET_STATE_DIR := $(STATE_DIR)
CLUSTER := $(CURDIR)/target/debug/svcnet-cluster
NODES ?= 3
CLUSTER_FLAGS ?=
# The e2e suite runs on a dual-stack cluster, so both families are always tested.
E2E_CLUSTER_FLAGS ?= --dual-stack

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install the Debian packages the tests need (nftables, iproute2, socat, conntrack)
	bash scripts/install-deps.sh

.PHONY: build
build: ## Build every crate (debug)
	$(CARGO) build --workspace --bins

.PHONY: hyperkube
hyperkube: ## Build (or reuse the cached) upstream control plane binary
	@bash e2e/hyperkube/build.sh >/dev/null

.PHONY: cluster-up
cluster-up: build hyperkube ## Start the local cluster (NODES=3; CLUSTER_FLAGS=--dual-stack, --upstream-endpointslice, --simulated)
	$(CLUSTER) up --nodes $(NODES) --hyperkube "$$(bash e2e/hyperkube/build.sh)" $(CLUSTER_FLAGS)

.PHONY: cluster-down
cluster-down: ## Remove every process, namespace and file of the local cluster
	@if [ -x $(CLUSTER) ]; then $(CLUSTER) down; else echo "no svcnet-cluster binary: nothing to take down"; fi

.PHONY: cluster-status
cluster-status: ## Show the local cluster's nodes, processes and namespaces
	$(CLUSTER) status

.PHONY: crds
crds: ## Regenerate the CRD YAML in crds/yaml from the Rust types (a test fails when it is stale)
	$(CARGO) run -q -p svcnet-crds --bin svcnet-crdgen
	cp crds/yaml/*.yaml charts/svcnet/crds/

.PHONY: lint
lint: ## cargo fmt --check, clippy with warnings as errors, and the Helm chart check
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	bash scripts/check-chart.sh

.PHONY: chart-check
chart-check: ## Helm chart: CRDs in sync, helm lint --strict, rendered manifests against the Kubernetes schemas
	bash scripts/check-chart.sh

.PHONY: test-unit
test-unit: ## Unit, property and doc tests of every crate
	$(CARGO) test --workspace

.PHONY: test-e2e
test-e2e: build hyperkube ## End-to-end tests on a fresh (dual-stack) local cluster, then check that down left nothing
	E2E_CLUSTER_FLAGS="$(E2E_CLUSTER_FLAGS)" bash scripts/e2e.sh

.PHONY: test
test: lint test-unit test-e2e ## Everything CI runs: lint, unit tests, e2e tests

.PHONY: bench
bench: ## Benchmarks (figures go to docs/benchmarks.md by hand)
	$(CARGO) bench -p svcnet-allocator

.PHONY: bench-allocator
bench-allocator: ## Allocator benchmark side by side with upstream (docs/benchmarks.md)
	bash bench/allocator-vs-upstream.sh

.PHONY: bench-proxy
bench-proxy: ## svcnet-proxy vs upstream kube-proxy (nftables) at 1k/10k/30k Services (docs/benchmarks.md)
	bash bench/proxy/run.sh

.PHONY: bench-endpointslice
bench-endpointslice: ## EndpointSlice controller vs upstream (docs/benchmarks.md)
	bash bench/endpointslice/run.sh

.PHONY: bench-webhook
bench-webhook: ## Service creations through the allocation webhook (1 and 2 replicas) vs none (docs/benchmarks.md)
	bash bench/webhook/run.sh

.PHONY: demo
demo: cluster-up ## Local cluster + svcnet + the quickstart: requests answered through ClusterIP and NodePort
	bash scripts/demo.sh
