# flatnet — run `make` or `make help` for the list of targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

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

GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := $(BIN)/golangci-lint

# The race detector is on by default: fakecloud, ipamd and the fabric are concurrent, and a race
# found in CI is cheaper than one found in the lab. RACE= turns it off for a quicker local run.
RACE         ?= -race
TEST_TIMEOUT ?= 25m
TEST_FLAGS   ?=
PKGS         ?= ./...
# make test fuzzes each target briefly; make fuzz runs longer.
TEST_FUZZTIME ?= 5s
FUZZTIME      ?= 2m

BENCH_PKGS ?= ./fakecloud/... ./cni/... ./ipamd/... ./lbcontroller/... ./test/lab/...
BENCHTIME  ?= 2s
BENCH      ?= .
BENCH_COUNT ?= 1
BENCH_OUT  ?= bench.out

.PHONY: help
help: ## List the targets (default)
	@echo "flatnet: make <target>   (make test and make demo need root: they use network namespaces)"
	@echo
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-15s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every binary under cmd/ into ./bin (static: CGO_ENABLED=0, as a CNI plugin must be)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

.PHONY: test
test: require-root verify ## Verify, then run every test (root; race detector on, RACE= to drop it) and each fuzz target briefly
	$(GO) test $(RACE) -count=1 -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) $(PKGS)
	FUZZTIME=$(TEST_FUZZTIME) hack/fuzz.sh

.PHONY: k8s-bins
k8s-bins: ## Build kube-apiserver, -controller-manager, -scheduler, kubectl and etcd into FLATNET_CACHE (once per version; long the first time)
	@test "$(FLATNET_K8S_BIN_DIR)" = "$(FLATNET_CACHE)/k8s/$(K8S_VERSION)/bin" || \
		{ echo "make k8s-bins builds into $(FLATNET_CACHE)/k8s/$(K8S_VERSION)/bin; unset FLATNET_K8S_BIN_DIR or point it there" >&2; exit 1; }
	hack/k8s-bins/build.sh

.PHONY: require-root
require-root:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make test needs root: its tests create network namespaces, veths and routes." >&2; \
		echo "Run it as root (sudo -E make test) on a Linux machine with Go 1.26." >&2; \
		exit 1; \
	fi

.PHONY: verify
verify: fmt-check vet mod-verify lint verify-imports ## gofmt check, go vet, go mod verify, lint, import-direction check

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

.PHONY: mod-verify
mod-verify:
	$(GO) mod verify

.PHONY: verify-imports
verify-imports: ## Check the dependency direction (STYLE.md) on the full import graph
	$(GO) run ./hack/verify-imports

.PHONY: lint
lint: $(GOLANGCI_LINT) ## golangci-lint (pinned, installed into ./bin) with .golangci.yml
	$(GOLANGCI_LINT) run ./...

# Re-run the installer whenever the pin changes; it is a no-op when ./bin already has the pin.
$(GOLANGCI_LINT): Makefile hack/install-golangci-lint.sh
	hack/install-golangci-lint.sh $(GOLANGCI_LINT_VERSION) $(BIN)
	@touch $@

.PHONY: tools
tools: $(GOLANGCI_LINT) ## Install the pinned tools into ./bin

.PHONY: bench
bench: ## Benchmarks of BENCH_PKGS (default: fakecloud, the CNI plugin, ipamd, lbcontroller, the lab), output teed into BENCH_OUT
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCH_COUNT) $(BENCH_PKGS) | tee $(BENCH_OUT)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 2m)
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: demo
demo: build $(if $(NOK8S),,k8s-bins) ## The lab on the built-in fakecloud: 3 nodes and a Kubernetes cluster, pods with VPC IPs reaching each other, then teardown (root; KEEP=1 keeps it; NOK8S=1 skips the cluster)
	$(BIN)/flatnet-lab demo $(if $(KEEP),--keep,) $(if $(NOK8S),--kubernetes=false,--k8s-bin-dir $(FLATNET_K8S_BIN_DIR))

.PHONY: soak
soak: require-root ## The lab's chaos test at 20,000 pod cycles (SOAK_CYCLES=N), faults and kill -9s included; figures in the log
	FLATNET_SOAK_CYCLES=$(or $(SOAK_CYCLES),20000) $(GO) test -count=1 -timeout 12h -run TestChaosPodChurnUnderFaultsAndKills -v ./test/lab/

.PHONY: demo-fakecloud
demo-fakecloud: build ## Walk through fakecloud's API on loopback: limits, throttling, faults (no root needed)
	hack/demo.sh

.PHONY: generate
generate: ## go generate ./...: the node fast path's BPF object from its C source (needs clang and libbpf-dev)
	$(GO) generate ./...

.PHONY: manifests
manifests: ## RBAC manifests for lbcontroller and ipamd: not scheduled by an issue yet (docs/lbcontroller.md lists the rules)
	@echo "make manifests: no manifests are generated yet (no issue schedules them); docs/lbcontroller.md lists lbcontroller's RBAC rules." >&2; exit 1

.PHONY: e2e
e2e: ## End-to-end tests in the lab: land with issue 6
	@echo "make e2e: the lab and its end-to-end tests land with issue 6; make test runs every test that exists." >&2; exit 1

.PHONY: kind-e2e
kind-e2e: ## The stack on kind with the Helm chart (needs Docker): not scheduled by an issue yet
	@echo "make kind-e2e: the Helm chart and the kind run are not scheduled by any issue yet." >&2; exit 1

.PHONY: clean
clean: ## Remove ./bin, test binaries and benchmark output (leaves the tool cache in FLATNET_CACHE)
	rm -rf $(BIN) $(BENCH_OUT) *.test coverage.out coverage.html
