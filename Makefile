# The README's commands. `make test` is what CI runs (.ci/run).
GO ?= go

.PHONY: run test deps lint unit race e2e build fuzz stress kube-tools image

# Run stund locally: STUN on :3478 (UDP and TCP), HTTP on :9478.
run:
	$(GO) run ./cmd/stund

# Every test: formatting and vet, unit and loopback tests (coturn interop,
# chart rendering, fuzz seeds), then the network-namespace lab (root).
test: deps lint unit race e2e

HELM_VERSION := v3.22.0
HELM := $(CURDIR)/bin/helm

deps:
	bash .ci/deps

# Helm for the chart tests, built once from the Go module proxy (a few
# minutes the first time, then cached), outside any test's timeout.
$(HELM):
	mkdir -p bin
	cd /tmp && GOFLAGS= GOBIN=$(CURDIR)/bin $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# Kubernetes for the e2e lab's real cluster: kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl
# at KUBE_VERSION with its version string, and an etcd server, built from
# the Go module proxy by the separate module tools/kube (its dependencies
# stay out of go.mod). About 6 minutes cold, seconds after.
KUBE_VERSION := v1.37.2
KUBE_TOOLS := $(addprefix $(CURDIR)/bin/,kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd)
KUBE_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean
kube-tools: $(KUBE_TOOLS)
$(KUBE_TOOLS): tools/kube/go.mod tools/kube/go.sum tools/kube/etcd/main.go
	mkdir -p bin
	cd tools/kube && GOFLAGS= $(GO) build -ldflags '$(KUBE_LDFLAGS)' -o $(CURDIR)/bin/ \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
		k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl ./etcd
	touch $(KUBE_TOOLS)

# The container images without a Docker engine
# (docs/development.md#container-images): stund and its debug image
# (busybox) as docker-archive tarballs tagged IMAGE_REPO:IMAGE_VERSION and
# IMAGE_REPO:IMAGE_VERSION-debug, and a pause image for a kubelet's sandbox
# tagged PAUSE_TAG, written into IMAGE_DIR by the separate module
# tools/image (its dependencies stay out of go.mod).
# IMAGE_VERSION is the chart's appVersion; every timestamp in the images is
# SOURCE_DATE_EPOCH (default: the last commit's time), so two builds of one
# tree give byte-identical tarballs. Needs busybox-static and
# ca-certificates (.ci/deps).
IMAGE_DIR ?= $(CURDIR)/bin/image
IMAGE_REPO ?= ghcr.io/stund/stund
PAUSE_TAG ?= stund.local/pause:3.10
IMAGE_VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/stund/Chart.yaml)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_OUT = $(abspath $(IMAGE_DIR))
image:
	@test -n "$(IMAGE_VERSION)" || { echo "make image: no appVersion in charts/stund/Chart.yaml" >&2; exit 1; }
	mkdir -p $(IMAGE_OUT)/bin
	CGO_ENABLED=0 GOOS=linux $(GO) build -trimpath -buildvcs=false -ldflags='-s -w -X main.version=$(IMAGE_VERSION)' \
		-o $(IMAGE_OUT)/bin/ ./cmd/stund ./cmd/stuncheck
	cd tools/image && CGO_ENABLED=0 GOOS=linux GOFLAGS= $(GO) build -trimpath -buildvcs=false -ldflags='-s -w' \
		-o $(IMAGE_OUT)/bin/pause ./pause
	cd tools/image && GOFLAGS= $(GO) run -buildvcs=false . --bin $(IMAGE_OUT)/bin --out $(IMAGE_OUT) \
		--version '$(IMAGE_VERSION)' --repository '$(IMAGE_REPO)' --pause-tag '$(PAUSE_TAG)' --epoch '$(SOURCE_DATE_EPOCH)'

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...

# internal/imagetest checks the tarballs `make image` just wrote
# (STUND_IMAGE_DIR) against a second build, the spec and the Dockerfile.
unit: $(HELM) image
	STUND_HELM=$(HELM) STUND_IMAGE_DIR=$(IMAGE_OUT) $(GO) test -count=1 -timeout 20m ./...

# The packages with goroutines once more under the race detector (not the
# chart's or the images', which drive helm and make).
race:
	$(GO) test -count=1 -race -timeout 20m ./pkg/... ./cmd/... $$($(GO) list ./internal/... | grep -v -e /charttest -e /imagetest)

# The real node (TestRealNode*) runs the chart from the tarballs of `make image`.
e2e: $(HELM) $(KUBE_TOOLS) image
	@if [ "$$(id -u)" -ne 0 ]; then echo "the e2e lab needs root (network namespaces): sudo make e2e" >&2; exit 1; fi
	STUND_HELM=$(HELM) STUND_KUBE_BIN=$(CURDIR)/bin STUND_IMAGE_DIR=$(IMAGE_OUT) $(GO) test -count=1 -timeout 30m -tags e2e ./e2e/...

# The socket-level packages many times over, plainly and under the race
# detector: a test that fails one run in twenty blocks landings at random.
# Run it before landing a change to these packages; STRESS_COUNT=100 or
# STRESS_RUN=TestName to dig into one test.
STRESS_COUNT ?= 20
STRESS_RUN ?= .
STRESS_PKGS ?= ./internal/stund/server ./internal/stund/admin ./internal/stuncheck/client ./internal/stuncheck/load ./internal/stuncheck/turn ./internal/stuncheck/exporter ./pkg/check ./cmd/stund ./cmd/stuncheck
stress:
	$(GO) test -count=$(STRESS_COUNT) -run '$(STRESS_RUN)' -timeout 60m $(STRESS_PKGS)
	$(GO) test -count=$(STRESS_COUNT) -run '$(STRESS_RUN)' -race -timeout 90m $(STRESS_PKGS)

build:
	mkdir -p bin
	$(GO) build -o bin/ ./cmd/stund ./cmd/stuncheck

# Longer fuzzing of the request path; FUZZTIME=10m for a real run.
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run XXX -fuzz FuzzHandle -fuzztime $(FUZZTIME) ./internal/stund/server
	$(GO) test -run XXX -fuzz FuzzTCPStream -fuzztime $(FUZZTIME) ./internal/stund/server
