# dflow — see README.md. `make demo` and `make test` are the two entry points.
GO        ?= go
BIN       := $(CURDIR)/dflow
WFCHECK   := $(CURDIR)/bin/workflowcheck
DEMO_DIR  ?= examples/hello
DEMO_NODES ?= 3

.PHONY: all build test unit lint fmt vet workflowcheck demo demo-stop bench clean

all: build

## build: the dflow binary at ./dflow
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/dflow

## test: lint, then every test (unit, workflow, integration, end to end)
test: lint unit

unit: build
	DFLOW_BIN=$(BIN) $(GO) test -count=1 -timeout 14m ./...

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

## demo: start the embedded control plane and local nodes for examples/hello
demo: build
	cd $(DEMO_DIR) && $(BIN) set $(DEMO_NODES)
	cd $(DEMO_DIR) && $(BIN) list
	cd $(DEMO_DIR) && $(BIN) server status

demo-stop:
	cd $(DEMO_DIR) && $(BIN) set 0 && $(BIN) server stop

## bench: measured numbers, printed as a table and written to bench/results/
bench: build
	DFLOW_BIN=$(BIN) $(GO) run ./bench -out bench/results

clean:
	rm -rf $(BIN) bin
