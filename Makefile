# driftmon — the commands a developer needs. Everything but test-kafka needs only Go;
# test-kafka also needs Java 17+ and Maven.
GO      ?= go
PKGS    := ./...
BENCH   ?= .

.PHONY: demo test test-kafka lint bench build fuzz soak image test-deploy

## demo: everything in one process — embedded Kafka, traffic that drifts, fake Slack, webhook receiver
demo:
	$(GO) run ./cmd/driftmon demo $(ARGS)

## test: every test, with the race detector, after gofmt and go vet
test: lint
	$(GO) test -race -count=1 $(PKGS)

## test-kafka: the integration tests (and the late-labels and cluster kill -9 tests) against a real Apache Kafka broker, which .ci/kafka.sh fetches through Maven (Java 17+), starts on 127.0.0.1 and always stops
test-kafka:
	@trap '.ci/kafka.sh stop' EXIT; \
	addrs=$$(.ci/kafka.sh start) || exit 1; \
	export $$addrs DRIFTMON_KAFKA_SCRIPT="$(CURDIR)/.ci/kafka.sh"; \
	$(GO) test -race -count=1 -v ./internal/integration/ && \
	$(GO) test -race -count=1 -v -run 'TestLateLabels|TestClusterGivesTheWindowsOfOneProcess' ./internal/monitor/

## lint: gofmt and go vet must be clean
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: the benchmarks whose figures go into bench/README.md
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(PKGS)

## fuzz: a short run of every fuzz target (FUZZTIME=30s by default). Minimizing a new input
## is capped (FUZZMINIMIZE): Go's default of 60 s ate a whole short run of FuzzArrowIPCDecode
## (25 executions in 30 s; 5,637 with 5 s).
FUZZTIME ?= 30s
FUZZMINIMIZE ?= 5s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg || exit 1; \
	  done; \
	done

## build: the driftmon binary (BIN=path to put it elsewhere), stamped with the version (the
## latest tag, or the short commit before the first one; "-dirty" with uncommitted changes),
## the commit and the build date that `driftmon version` and driftmon_build_info report
BIN        ?= driftmon
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
VERSIONPKG := github.com/driftmon/driftmon/internal/version
LDFLAGS    := -X $(VERSIONPKG).version=$(VERSION) -X $(VERSIONPKG).commit=$(COMMIT) -X $(VERSIONPKG).date=$(BUILD_DATE)
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/driftmon

## test-deploy: the tests of deploy/, a module of its own (its container, Helm, Kubernetes and
## Prometheus modules stay out of go.mod): the image run as uid 65532 from its unpacked
## archive (as root; skipped otherwise), the chart rendered for both modes and checked against
## the Kubernetes API types, the alerting rules run on series, the dashboard's queries parsed
test-deploy:
	cd deploy && $(GO) vet ./... && $(GO) test -count=1 ./...

## image: the container image as an OCI archive (IMAGE, default driftmon-image.tar), built
## without Docker by deploy/image: a CGO_ENABLED=0 binary, the CA roots of this machine and the
## non-root user 65532 on an empty base, as the Dockerfile builds it on distroless. Load it
## with `podman load -i`, `docker load -i` or `skopeo copy oci-archive:...`, or push it with crane
IMAGE     ?= driftmon-image.tar
IMAGE_TAG ?= driftmon:$(or $(VERSION),dev)
image:
	@bin=$$(mktemp -d)/driftmon; trap 'rm -rf "$$(dirname $$bin)"' EXIT; \
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $$bin ./cmd/driftmon && \
	cd deploy && $(GO) run ./cmd/driftmon-image -binary $$bin -o $(abspath $(IMAGE)) -tag '$(IMAGE_TAG)' \
	  -version '$(VERSION)' -revision '$(COMMIT)'

## soak: the fault campaign (internal/soak) against the real driftmon binary and broker; prints the reliability table, fails on any breach. SOAK=short|default|long, SEED=n to replay one
SOAK ?= default
soak:
	$(GO) run ./cmd/soak -profile $(SOAK) $(if $(SEED),-seed $(SEED)) $(SOAKFLAGS)
