# gravity: `make` builds tele, gravity and the base image into build/.
include versions.mk

BUILD   := build
PKG     := github.com/opengravity/gravity
COMMIT  := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# Base images are stamped with the commit time, so the same commit builds the
# same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
LDFLAGS := -s -w -X $(PKG)/internal/version.Version=$(GRAVITY_VERSION) \
	-X $(PKG)/internal/version.Commit=$(COMMIT) \
	-X $(PKG)/internal/version.Kubernetes=$(KUBERNETES_VERSION)
GO      ?= go
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
BASE    := $(BUILD)/base-images/gravity-$(GRAVITY_VERSION).tar
TELE    := $(BUILD)/tele
EXAMPLE_IMAGES := $(BUILD)/example-images
# The state dir the demo and example images use (tele's default is ~/.gravity).
STATE_DIR ?= $(HOME)/.gravity

.PHONY: all binaries base base-next deps example-images demo demo-down test test-e2e bench cis fuzz vet runtime clean FORCE

# The runtime comes first: the base image carries it (RUNTIME_BIN is read
# when make starts, so base is made by a second make once it exists).
all: binaries runtime
	@$(MAKE) --no-print-directory base
	@ln -sfn runtime/bin/kube $(BUILD)/kubectl

binaries: $(TELE) $(BUILD)/gravity $(BUILD)/tsh

# go's own cache decides what to rebuild; the binary is replaced only when it
# changed, so targets depending on it (the base image) stay up to date cheaply.
$(BUILD)/tele $(BUILD)/gravity $(BUILD)/tsh $(BUILD)/pause $(BUILD)/helm: $(BUILD)/%: FORCE
	@mkdir -p $(BUILD)
	$(GOBUILD) -o $@.new ./cmd/$*
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

# The Kubernetes runtime binaries (kube multicall, etcd, containerd, runc, CNI
# plugins, registry, CoreDNS, helm) from the pinned upstream modules under
# runtime/, into build/runtime/bin. Cached per binary by version, module and
# toolchain, so a rebuild with nothing changed takes seconds; the cold build
# takes about half an hour (docs/runtime.md). Every binary must be static.
RUNTIME := $(BUILD)/runtime
runtime: deps
	$(GO) run ./hack/buildruntime -root runtime -versions versions.mk -out $(RUNTIME)
	$(GO) run ./hack/checkstatic $(RUNTIME)/bin

base: $(BASE)

# The base image carries the runtime once `make runtime` has built it (about
# half an hour cold); until then, only the gravity binary.
RUNTIME_BIN := $(wildcard $(BUILD)/runtime/bin/kube)
$(BASE): $(BUILD)/gravity $(BUILD)/tsh versions.mk $(if $(RUNTIME_BIN),$(BUILD)/pause $(BUILD)/helm $(BUILD)/runtime/bin/kube)
	@mkdir -p $(dir $@)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./hack/mkbase -gravity $(BUILD)/gravity -tsh $(BUILD)/tsh -version $(GRAVITY_VERSION) \
		-kubernetes $(KUBERNETES_VERSION) -o $@ \
		$(if $(RUNTIME_BIN),-runtime $(BUILD)/runtime/bin -pause $(BUILD)/pause -helm-compat $(BUILD)/helm -coredns-version $(COREDNS_VERSION:v%=%))

# The same runtime as a base image of the next version, with the gravity of
# that version: what the end-to-end tests upgrade a cluster's runtime to
# (each node switched to /usr/lib/gravity/$(NEXT_VERSION), every component
# restarted) without a second Kubernetes build. Made by a second make, as
# base is.
NEXT_VERSION := 0.1.1
NEXT_BASE    := $(BUILD)/base-images/gravity-$(NEXT_VERSION).tar
base-next: $(NEXT_BASE)

$(BUILD)/next/gravity: FORCE
	@mkdir -p $(dir $@)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(subst Version=$(GRAVITY_VERSION),Version=$(NEXT_VERSION),$(LDFLAGS))' -o $@.new ./cmd/gravity
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

$(NEXT_BASE): $(BUILD)/next/gravity $(BUILD)/tsh versions.mk $(BUILD)/pause $(BUILD)/helm $(BUILD)/runtime/bin/kube
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./hack/mkbase -gravity $(BUILD)/next/gravity -tsh $(BUILD)/tsh -version $(NEXT_VERSION) \
		-kubernetes $(KUBERNETES_VERSION) -o $@ \
		-runtime $(BUILD)/runtime/bin -pause $(BUILD)/pause -helm-compat $(BUILD)/helm -coredns-version $(COREDNS_VERSION:v%=%)

# Runnable stand-ins for the walkthrough's images, built once as OCI archives
# and loaded into the state dir on every run, as on an air-gapped build box.
example-images: $(TELE) $(EXAMPLE_IMAGES)/.done
	$(TELE) --state-dir $(STATE_DIR) image load $(EXAMPLE_IMAGES)/*.oci.tar

$(EXAMPLE_IMAGES)/.done: hack/exampleimages/main.go | deps
	$(GO) run ./hack/exampleimages -out $(EXAMPLE_IMAGES)
	@touch $@

# Host packages the build, the demo and the tests need: the one list is
# hack/host-packages (each with why).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_DEPS := $(shell sed 's/\#.*//' hack/host-packages)
deps:
	@missing=$$(for p in $(DEB_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	[ -z "$$missing" ] || { echo "deps: installing" $$missing; $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; }

# The main job: build the walkthrough's cluster image (examples/gravity101/v1)
# and install it on a fresh test host as its user would: copied onto the
# node, tar -xf, ./gravity install (hack/demo.sh). The host stays up for a
# look; `make demo-down` removes it and all it made.
DEMO_PREFIX ?= gdemo
DEMO_SUBNET ?= 10.237.0.0/24
DEMO := BUILD=$(BUILD) STATE_DIR=$(STATE_DIR) DEMO_PREFIX=$(DEMO_PREFIX) DEMO_SUBNET=$(DEMO_SUBNET) hack/demo.sh
demo: deps all example-images $(BUILD)/testhost
	@$(DEMO) up

demo-down: $(BUILD)/testhost
	@$(DEMO) down

# The CIS Kubernetes Benchmark rules of trivy-checks, run on a node
# installed as the demo installs it (hack/cis, its own module: OPA and the
# rules stay out of gravity's). Fails when a failure has no written reason
# in docs/security.md.
cis: deps all example-images $(BUILD)/testhost
	@mkdir -p $(BUILD)/cis
	cd hack/cis && CGO_ENABLED=0 $(GO) build -trimpath -o $(CURDIR)/$(BUILD)/cis/cis .
	STATE_DIR=$(STATE_DIR) BUILD=$(BUILD) hack/cis/run.sh

# The test-host tool the demo drives (hack/testhost).
$(BUILD)/testhost: FORCE
	@mkdir -p $(BUILD)
	$(GO) build -o $@.new ./hack/testhost
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

# GRAVITY_E2E=1 (set by .ci/run) adds the end-to-end tests.
test: deps
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e
	$(GO) test ./...
	cd hack/cis && $(GO) vet ./... && $(GO) test ./...
	@if [ -n "$(GRAVITY_E2E)" ]; then $(MAKE) --no-print-directory test-e2e; fi

# Warm rebuild of the example, then vendoring throughput (as a ratio to a
# plain copy on the same disk) and peak RSS while vendoring a 1 GiB image.
BENCH_IMAGE_MB ?= 1024
# End-to-end tests on test hosts with the real runtime and the base image
# (root; the runtime takes about 30 min cold, a minute with Go's cache
# warm). `make test` runs them too when GRAVITY_E2E=1, as .ci/run does.
test-e2e: deps all example-images $(BUILD)/testhost
	@$(MAKE) --no-print-directory base-next
	$(GO) test -tags e2e -count=1 -v -timeout 30m ./test/e2e

bench: deps all example-images
	$(GO) run ./hack/bench -tele $(TELE) -state-dir $(STATE_DIR)
	GRAVITY_BENCH_IMAGE_MB=$(BENCH_IMAGE_MB) $(GO) test -run='^$$' -bench=BenchmarkVendorThroughput -benchtime=1x ./internal/vendor
	$(GO) test -run='^$$' -bench=BenchmarkWrite -benchtime=3x ./internal/clusterimage
	@$(MAKE) --no-print-directory base-next
	@if [ "$$(id -u)" = 0 ]; then $(GO) test -tags e2e -run='^$$' -bench='BenchmarkRuntime|BenchmarkInstall|BenchmarkJoin|BenchmarkUpgrade' -benchtime=1x -v ./test/e2e; \
	else echo "bench: the runtime figures need root (test hosts)"; fi
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory cis; fi

# A short run of every fuzzer (FUZZTIME per fuzzer).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf $(BUILD)
