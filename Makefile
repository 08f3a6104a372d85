# flatnet — run `make` or `make help` for the list of targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory
# A target's prerequisites are steps in order (require-root, prereqs, verify, k8s-bins, ...): never
# run them side by side, even under make -j.
.NOTPARALLEL:

GO            ?= go
# Every Go file of the tree; git ls-files would also list files deleted in the work tree.
GOFILES        = $(shell find . -name '*.go' -not -path './bin/*' -not -path './.git/*' -not -path './vendor/*')
BIN           := $(CURDIR)/bin
FLATNET_CACHE ?= $(HOME)/.cache/flatnet
export FLATNET_CACHE

# The lab's Kubernetes control plane and etcd, built from the Go module proxy by make k8s-bins into
# the cache (outside the tree). The version is the wrapper module's (hack/k8s-bins/go.mod); the
# lab's tests find the binaries through FLATNET_K8S_BIN_DIR.
K8S_VERSION         := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ {print $$2; exit}' hack/k8s-bins/go.mod)
FLATNET_K8S_BIN_DIR ?= $(FLATNET_CACHE)/k8s/$(K8S_VERSION)/bin
export FLATNET_K8S_BIN_DIR

# The Go release go.mod asks for (hack/prereqs.sh refuses an older one).
GO_VERSION := $(shell awk '$$1 == "go" {print $$2; exit}' go.mod)

# Pinned in hack/prereqs.sh's list of tools, installed into ./bin.
GOLANGCI_LINT := $(BIN)/golangci-lint
HELM          := $(BIN)/helm

# The race detector is on by default: fakecloud, ipamd and the fabric are concurrent, and a race
# found in CI is cheaper than one found in the lab. RACE= turns it off for a quicker local run.
RACE         ?= -race
# Per package: the lab's package runs 12 tests, each with its own control plane and lab (16 to 22
# minutes on 2 cores beside the other packages), so it gets room beyond that.
TEST_TIMEOUT ?= 40m
TEST_FLAGS   ?=
# The lab's package is named first: go test starts the packages' runs in the order given, two at a
# time on two cores, and the lab's is most of the run; the other packages take the second slot
# beside it instead of delaying its start by 7 to 11 minutes.
PKGS         ?= ./lab/ ./...
# make test fuzzes each target briefly; make fuzz runs longer.
TEST_FUZZTIME ?= 5s
FUZZTIME      ?= 2m

BENCH_PKGS ?= ./fakecloud/... ./cni/... ./ipamd/... ./lbcontroller/... ./lab/...
BENCHTIME  ?= 2s
BENCH      ?= .
BENCH_COUNT ?= 1
BENCH_OUT  ?= bench.out

.PHONY: help
help: ## List the targets (default)
	@echo "flatnet: make <target>   (make test, make demo and make e2e need root: they use network namespaces)"
	@echo "On a machine with Go $(GO_VERSION), make and git they install what else they need (make prereqs, make k8s-bins)."
	@echo
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-15s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every binary under cmd/ into ./bin (static: CGO_ENABLED=0, as a CNI plugin must be)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

# The container images (docs/images.md), built without a Docker engine: flatnet-ipamd,
# flatnet-cni and flatnet-lbcontroller cross-built for each of PLATFORMS, then an OCI layout
# (IMAGES_OUT/oci) and one tarball per image for kind and containerd.
PLATFORMS  ?= linux/amd64,linux/arm64
IMAGES_OUT ?= $(BIN)/images

.PHONY: images
images: ## Build the images flatnet-ipamd and flatnet-lbcontroller for PLATFORMS (default linux/amd64,linux/arm64) into bin/images: OCI layout and tarballs (docs/images.md)
	$(GO) run ./hack/images --go '$(GO)' --out '$(IMAGES_OUT)' --platforms '$(PLATFORMS)'

.PHONY: test
test: require-root prereqs verify k8s-bins chart-lint ## Prerequisites, verify, the Kubernetes binaries, helm lint, then every test (the chart's included; root; race detector on, RACE= to drop it) and each fuzz target briefly
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS)
	FUZZTIME=$(TEST_FUZZTIME) hack/fuzz.sh

.PHONY: prereqs
prereqs: ## Check Go, install the missing Debian packages (root only if one is missing) and the pinned tools into ./bin; idempotent
	hack/prereqs.sh

# What make demo, make e2e and make soak need: Go and the Debian packages, no linter.
.PHONY: prereqs-system
prereqs-system:
	hack/prereqs.sh --system

# The binaries the lab's control plane and the API-server tests (ipamd/kube, lbcontroller,
# nodeagent, lab) run.
K8S_BINS := etcd kube-apiserver kube-controller-manager kube-scheduler kubectl

.PHONY: k8s-bins
k8s-bins: ## Build kube-apiserver, -controller-manager, -scheduler, kubectl and etcd into FLATNET_CACHE (once per version; long the first time); make test and make demo run it
ifeq ($(FLATNET_K8S_BIN_DIR),$(FLATNET_CACHE)/k8s/$(K8S_VERSION)/bin)
	hack/k8s-bins/build.sh
else
	@# FLATNET_K8S_BIN_DIR points elsewhere: use what is there, build nothing.
	@for b in $(K8S_BINS); do \
		[ -x "$(FLATNET_K8S_BIN_DIR)/$$b" ] || { echo "make k8s-bins: FLATNET_K8S_BIN_DIR=$(FLATNET_K8S_BIN_DIR) has no $$b; unset FLATNET_K8S_BIN_DIR to build them into $(FLATNET_CACHE)/k8s/$(K8S_VERSION)/bin" >&2; exit 1; }; \
	done
	@echo "$(FLATNET_K8S_BIN_DIR)"
endif

.PHONY: require-root
require-root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make $(MAKECMDGOALS) needs root: it creates network namespaces, veths, routes and nftables rules (never touching the host's own)." >&2; \
		echo "Run it as root on Linux with Go $(GO_VERSION) on PATH: sudo env \"PATH=\$$PATH\" make $(MAKECMDGOALS)" >&2; \
		exit 1; \
	fi

.PHONY: verify
verify: fmt-check vet mod-tidy mod-verify lint verify-imports gateway-crds-check ## gofmt check, go vet, go.mod tidy, go mod verify, lint, import-direction check, the chart's Gateway API CRDs

.PHONY: fmt-check
fmt-check:
	@out=$$(gofmt -l $(GOFILES)); \
	if [ -n "$$out" ]; then echo "gofmt would change these files (run make fmt):" >&2; echo "$$out" >&2; exit 1; fi

.PHONY: fmt
fmt: ## Format all Go files with gofmt -s
	gofmt -s -w $(GOFILES)

.PHONY: vet
vet: ## go vet ./...
	$(GO) vet ./...

# go.mod and go.sum as go mod tidy leaves them: direct requirements in the first block, nothing
# missing or unused.
.PHONY: mod-tidy
mod-tidy:
	@if ! out=$$($(GO) mod tidy -diff 2>&1); then \
		echo "$$out" >&2; \
		if grep -q '^+++ ' <<<"$$out"; then \
			echo "go.mod or go.sum is not tidy (the diff above): run go mod tidy" >&2; \
		else \
			echo "go mod tidy -diff failed (above)" >&2; \
		fi; \
		exit 1; \
	fi

.PHONY: gateway-crds
gateway-crds: ## Copy the Gateway API CRDs of the pinned sigs.k8s.io/gateway-api into charts/flatnet/crds
	hack/gateway-crds/sync.sh

.PHONY: gateway-crds-check
gateway-crds-check:
	hack/gateway-crds/sync.sh --check

.PHONY: mod-verify
mod-verify:
	$(GO) mod verify

.PHONY: verify-imports
verify-imports: ## Check the dependency direction (docs/architecture.md, dependency rules) on the full import graph
	$(GO) run ./hack/verify-imports

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint (pinned, installed into ./bin) with .golangci.yml
	$(GOLANGCI_LINT) run ./...

# Checked again whenever the pin (hack/prereqs.sh) or the installer changes.
$(GOLANGCI_LINT): hack/prereqs.sh hack/install-golangci-lint.sh
	hack/prereqs.sh --tools
	@touch $@

# The chart: the pinned helm's strict lint with both value sets of the chart's tests, then the Go
# tests of charts/ (render, schema, golden files, object checks, API server dry run) and of the
# README generator. go test ./... (make test) runs the Go tests too.
CHART             := charts/flatnet
CHART_TEST_VALUES := charts/testdata/values/required.yaml charts/testdata/values/custom.yaml

.PHONY: chart-test
chart-test: chart-lint k8s-bins ## helm lint --strict of charts/flatnet (pinned helm in ./bin), then the chart's tests: golden files, schema, API server dry run (make test runs both)
	$(GO) test -count=1 $(TEST_FLAGS) ./charts/... ./hack/chartdoc/

.PHONY: chart-lint
chart-lint: $(HELM) ## helm lint --strict of charts/flatnet with each test values file
	@for v in $(CHART_TEST_VALUES); do \
		echo "$(HELM) lint --strict $(CHART) -f $$v"; \
		$(HELM) lint --strict $(CHART) --namespace flatnet-system -f $$v || exit 1; \
	done

.PHONY: chart-docs
chart-docs: ## Regenerate charts/flatnet/README.md from the comments of values.yaml (hack/chartdoc)
	$(GO) run ./hack/chartdoc -chart $(CHART)

# Checked again whenever the pin (hack/prereqs.sh) or the installer changes.
$(HELM): hack/prereqs.sh hack/install-helm.sh
	hack/prereqs.sh --tools
	@touch $@

.PHONY: tools
tools: ## Install the pinned tools missing from ./bin (part of make prereqs)
	hack/prereqs.sh --tools

.PHONY: bench
bench: ## Benchmarks of BENCH_PKGS (default: fakecloud, the CNI plugin, ipamd, lbcontroller, the lab), output teed into BENCH_OUT
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCH_COUNT) $(BENCH_PKGS) | tee $(BENCH_OUT)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 2m)
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: demo
demo: require-root prereqs-system build $(if $(NOK8S),,k8s-bins) ## The lab on the built-in fakecloud: 3 nodes and a Kubernetes cluster, pods with VPC IPs reaching each other, then teardown (root; KEEP=1 keeps it; NOK8S=1 skips the cluster; CLOUD=aws-api: ipamd and lbcontroller use the AWS driver on fakecloud's EC2/ELBv2 endpoint)
	$(BIN)/flatnet-lab demo $(if $(KEEP),--keep,) $(if $(NOK8S),--kubernetes=false,--k8s-bin-dir $(FLATNET_K8S_BIN_DIR)) $(if $(CLOUD),--cloud $(CLOUD),)

.PHONY: test-lab-aws
test-lab-aws: require-root prereqs-system k8s-bins ## The whole lab suite with ipamd and lbcontroller on the AWS driver against fakecloud's EC2/ELBv2 endpoint (FLATNET_LAB_CLOUD=aws-api)
	FLATNET_LAB_CLOUD=aws-api $(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./lab/

.PHONY: soak
soak: require-root prereqs-system ## The lab's chaos test at 20,000 pod cycles (SOAK_CYCLES=N): kill -9s and ADD/DEL failpoint exits growing with the cycles, ownership checked against the cloud; figures in the log
	FLATNET_SOAK_CYCLES=$(or $(SOAK_CYCLES),20000) $(GO) test -count=1 -timeout 12h -run TestChaosPodChurnUnderFaultsAndKills -v ./lab/

.PHONY: soak-k8s
soak-k8s: require-root prereqs-system k8s-bins ## The Kubernetes-level soak (about 10 minutes): a Deployment scaled up and down while node agents, the kube-apiserver and ipamds are killed -9 and restarted at growing intervals (SOAK_K8S=6m of churn; SOAK_K8S_LOGS=<dir> keeps the lab's logs); ownership checked against the cloud
	FLATNET_SOAK_K8S=$(or $(SOAK_K8S),6m) FLATNET_SOAK_K8S_LOGS=$(SOAK_K8S_LOGS) $(GO) test -count=1 -timeout 40m -run 'TestSoakKubernetes$$' -v ./lab/

.PHONY: demo-fakecloud
demo-fakecloud: build ## Walk through fakecloud's API on loopback: limits, throttling, faults (no root needed)
	hack/demo.sh

.PHONY: generate
generate: ## go generate ./...: the node fast path's BPF object from its C source (needs clang and libbpf-dev)
	$(GO) generate ./...

# make e2e runs every test of the lab but the chaos test, which make soak runs at length (make test
# runs it too, at 500 cycles).
E2E_SKIP ?= ^TestChaosPodChurnUnderFaultsAndKills$$

.PHONY: e2e
e2e: require-root prereqs-system k8s-bins ## The lab's end-to-end tests alone (./lab: control plane, cluster, load balancers, the demo; root), without the chaos test
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) -skip '$(E2E_SKIP)' $(TEST_FLAGS) ./lab/

# make conformance runs the official Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance,
# the version go.mod pins) against the lab with the chart-installed controller (docs/conformance.md):
# the suite's backends are echo-basic built from that module and a coredns stand-in, which the node
# agents run for those images (--image-binary); the suite runs in the lab's internet namespace,
# where the Gateways' addresses are. Report: conformance/reports/, summary: the README.
CONFORMANCE_BIN  := $(BIN)/conformance
CONFORMANCE_LOGS ?= $(CONFORMANCE_BIN)/logs
RUN_TEST         ?=
CONFORMANCE_ARGS ?=

.PHONY: conformance
conformance: require-root prereqs-system build k8s-bins ## The Gateway API conformance suite against the lab (root): report in conformance/reports/, summary in the README, logs in bin/conformance/logs; RUN_TEST=<test> runs one test, KEEP=1 keeps the lab
	CGO_ENABLED=0 $(GO) build -trimpath -o $(CONFORMANCE_BIN)/echo-basic sigs.k8s.io/gateway-api/conformance/echo-basic
	CGO_ENABLED=0 $(GO) build -trimpath -o $(CONFORMANCE_BIN)/coredns ./test/conformance/coredns
	$(GO) test -c -tags conformance -o $(CONFORMANCE_BIN)/conformance.test ./test/conformance
	$(GO) run ./hack/conformance -bin-dir $(BIN) -k8s-bin-dir $(FLATNET_K8S_BIN_DIR) -logs $(CONFORMANCE_LOGS) \
		-suite $(CONFORMANCE_BIN)/conformance.test -echo-basic $(CONFORMANCE_BIN)/echo-basic -coredns $(CONFORMANCE_BIN)/coredns \
		-base-manifests "$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api/conformance)/base/manifests.yaml" \
		-experimental-crds "$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)/config/crd/experimental" \
		$(if $(RUN_TEST),-run-test $(RUN_TEST),) $(if $(KEEP),-keep,) $(CONFORMANCE_ARGS)

# make kind-e2e runs the stack on kind with the Helm chart, fakecloud on the host with the kind
# nodes' namespaces attached to its fabric (docs/kind.md). It needs kind, Docker, helm and kubectl,
# and says so on a machine without them; make e2e is the same stack on network namespaces.
.PHONY: kind-e2e
kind-e2e: ## flatnet on a kind cluster with the chart: hack/kind/up.sh, checks, down.sh (root; kind, docker, helm, kubectl; KEEP=1 keeps it)
	hack/kind/e2e.sh

.PHONY: clean
clean: ## Remove ./bin, test binaries and benchmark output (leaves the tool cache in FLATNET_CACHE)
	rm -rf $(BIN) $(BENCH_OUT) *.test coverage.out coverage.html
