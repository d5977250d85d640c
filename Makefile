# dflow — see README.md. `make demo` and `make test` are the two entry points.
GO        ?= go
BIN       := $(CURDIR)/dflow
WFCHECK   := $(CURDIR)/bin/workflowcheck
DEMO_DIR  ?= examples/hello
DEMO_NODES ?= 3
# An offline cabal configuration (no repository stanza: Hackage is not
# needed, packages come from Debian's libghc-*-dev). Only `make demo` uses
# it; your own ~/.cabal is never touched.
OFFLINE_CABAL := $(CURDIR)/.cabal-offline
# What the builders, the etcd store and the tests need, from Debian.
DEBIAN_PKGS := ghc cabal-install libghc-warp-dev haskell-stack etcd-server curl git openssh-server vagrant docker-registry

.PHONY: all build deps test unit fuzz lint fmt vet workflowcheck demo demo-stop bench clean

all: build

## build: the dflow binary at ./dflow, and the node agent alone at ./dflow-agent
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/dflow
	$(GO) build -buildvcs=auto -o $(CURDIR)/dflow-agent ./cmd/dflow-agent

## deps: install what is missing (Debian: GHC, cabal, warp, stack, etcd, curl, sshd, vagrant)
deps:
	@missing=""; \
	for t in ghc cabal ghc-pkg stack etcd curl git vagrant /usr/sbin/sshd; do command -v $$t >/dev/null 2>&1 || missing=1; done; \
	[ -n "$$missing" ] || ghc-pkg list --simple-output warp 2>/dev/null | grep -q warp || missing=1; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "deps: installing $(DEBIAN_PKGS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PKGS) >/dev/null; \
	  else \
	    echo "deps: dflow builds Haskell with Debian's packages; run: sudo apt-get install $(DEBIAN_PKGS)"; exit 1; \
	  fi; \
	fi

$(OFFLINE_CABAL)/config:
	mkdir -p $(OFFLINE_CABAL)
	echo "-- dflow demo: offline, no repository stanza; packages come from the global package db" > $@

## test: lint, then every test (unit, workflow, integration, end to end), then each fuzz target briefly
test: lint unit fuzz

# Every fuzz target briefly, each for a count of inputs (about 3 s here;
# crashers found are kept under the package's testdata/fuzz/ and replayed
# by the unit tests from then on). A count, not a duration: go1.26's fuzz
# coordinator can fail a -fuzztime DURATION run with "context deadline
# exceeded" when the time is up (golang/go#75804, fixed in go1.27).
# FUZZTIME=10m (or 1000000x) runs every target for that instead.
FUZZTIME ?=
FUZZ_TARGETS := ./deploy:FuzzParse:10000x ./backends/reader/cabal:FuzzParse:100000x \
	./backends/reader/hpack:FuzzParse:60000x ./artifact:FuzzUnpack:50x ./agent/auth:FuzzVerify:50000x

## fuzz: run each fuzz target briefly (FUZZTIME=10m: each for that long)
fuzz:
	@mkdir -p $(CURDIR)/bin
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; n=$${FUZZTIME:-$${rest#*:}}; echo "fuzz $$pkg $$fn ($$n)"; \
	  $(GO) test $$pkg -run '^$$' -fuzz "^$$fn$$" -fuzztime $$n >$(CURDIR)/bin/fuzz.log 2>&1 || { cat $(CURDIR)/bin/fuzz.log; exit 1; }; \
	done

# cmd/dflow's end-to-end tests are the longest package (about 10 of the
# suite's minutes): it goes first, so the other packages fill the second
# lane beside it instead of after it.
unit: build deps
	DFLOW_BIN=$(BIN) $(GO) test -count=1 -timeout 18m ./cmd/dflow $$($(GO) list ./... | grep -v '/cmd/dflow$$')

## lint: gofmt, go vet and Temporal's workflow determinism check
lint: fmt vet workflowcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

$(WFCHECK):
	GOBIN=$(CURDIR)/bin $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0

workflowcheck: $(WFCHECK)
	$(WFCHECK) ./workflows/...

## demo: start the embedded control plane and local nodes, deploy examples/hello, show it
demo: build deps $(OFFLINE_CABAL)/config
	cd $(DEMO_DIR) && $(BIN) set $(DEMO_NODES)
	cd $(DEMO_DIR) && CABAL_DIR=$(OFFLINE_CABAL) $(BIN) deploy
	cd $(DEMO_DIR) && $(BIN) versions
	@cd $(DEMO_DIR) && for url in $$($(BIN) versions | awk 'NR>1 {print $$2}'); do \
	  printf '%s  ->  ' "$$url"; curl -sS -X POST "$$url" || echo; done
	cd $(DEMO_DIR) && $(BIN) server status

demo-stop:
	cd $(DEMO_DIR) && $(BIN) set 0 && $(BIN) server stop

## demo-deploy: deploy examples/hello again (after you changed it)
demo-deploy: build $(OFFLINE_CABAL)/config
	cd $(DEMO_DIR) && CABAL_DIR=$(OFFLINE_CABAL) $(BIN) deploy
	cd $(DEMO_DIR) && $(BIN) versions

## bench: measured numbers, printed as a table and written to bench/results/
bench: build
	DFLOW_BIN=$(BIN) $(GO) run ./bench -out bench/results

clean:
	rm -rf $(BIN) $(CURDIR)/dflow-agent bin
