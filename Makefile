# halosync. `make run` starts the local all-in-one server; `make test` runs every test,
# starting the local AWS stand-ins it needs. See README.md.

GO        ?= go
FUNCTIONS := ingest worker poller read publish
GOARCH_LAMBDA ?= arm64
LDFLAGS   := -s -w
# lambda.norpc: no net/rpc in the bootstraps (provided.al2023 speaks the Runtime API);
# nethttpomithttp2: no HTTP/2 in net/http. Every call a function makes (the Runtime API,
# SQS, DynamoDB, EventBridge, SSM, Secrets Manager, Halo) is HTTP/1.1, and HTTP/2's code
# is a third of a megabyte of each bootstrap (docs/PERFORMANCE.md, "Cold start").
LAMBDA_TAGS := lambda.norpc,nethttpomithttp2
BUILD_DIR ?= .aws-sam/bootstrap

.PHONY: run install test unit lint bench load fuzz build clean deploy standins-start standins-stop \
	$(foreach f,$(FUNCTIONS),build-$(f)) build-IngestFunction build-WorkerFunction build-PollerFunction build-ReadFunction \
	build-PublisherFunction

run:
	$(GO) run ./cmd/halosync serve --demo $(ARGS)

# install puts the halosync command where go install puts it: GOBIN, else GOPATH's bin.
install:
	$(GO) install ./cmd/halosync
	@dir=$$($(GO) env GOBIN); [ -n "$$dir" ] || dir=$$($(GO) env GOPATH | cut -d: -f1)/bin; \
	echo "installed $$dir/halosync"; \
	case ":$$PATH:" in *":$$dir:"*) ;; *) echo "$$dir is not on PATH: add it, e.g. export PATH=\"$$dir:\$$PATH\"";; esac

test:
	bash scripts/test.sh

# unit runs the tests that need no stand-in (the adapter tests skip without one).
unit:
	$(GO) test -count=1 ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	cfn-lint template.yaml

bench:
	bash scripts/bench.sh

# load drives `halosync serve` and the Lambda path on loopback with cmd/halosync-load's
# generator; bounded in time, it stops by itself (scripts/load.sh). LOAD_ARGS passes flags.
load:
	bash scripts/load.sh

fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

# build makes one stripped linux bootstrap per function, for Lambda's provided.al2023.
build: $(FUNCTIONS:%=build-%)

# A static pattern rule: make searches no implicit rule for a phony target.
$(FUNCTIONS:%=build-%): build-%:
	mkdir -p $(BUILD_DIR)/$*
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build -tags $(LAMBDA_TAGS) -trimpath \
		-ldflags '$(LDFLAGS)' -o $(BUILD_DIR)/$*/bootstrap ./functions/$*

# Targets sam build calls (BuildMethod: makefile), one per function's logical id. sam build
# runs them with its own environment, so `GOARCH_LAMBDA=amd64 sam build --parameter-overrides
# Architecture=x86_64` builds for x86_64 functions. Each also copies LOCAL_CONFIG, the
# configuration `sam local invoke --env-vars events/local-env.json` reads: a deployed function
# never reads it (template.yaml leaves HALOSYNC_CONFIG_FILE empty), and it holds sample values
# only.
LOCAL_CONFIG := events/halosync.local.yaml

build-IngestFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build -tags $(LAMBDA_TAGS) -trimpath \
		-ldflags '$(LDFLAGS)' -o $(ARTIFACTS_DIR)/bootstrap ./functions/ingest
	cp $(LOCAL_CONFIG) $(ARTIFACTS_DIR)/

build-WorkerFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build -tags $(LAMBDA_TAGS) -trimpath \
		-ldflags '$(LDFLAGS)' -o $(ARTIFACTS_DIR)/bootstrap ./functions/worker
	cp $(LOCAL_CONFIG) $(ARTIFACTS_DIR)/

build-PollerFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build -tags $(LAMBDA_TAGS) -trimpath \
		-ldflags '$(LDFLAGS)' -o $(ARTIFACTS_DIR)/bootstrap ./functions/poller
	cp $(LOCAL_CONFIG) $(ARTIFACTS_DIR)/

# The read function reads no configuration: it needs the table only.
build-ReadFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build -tags $(LAMBDA_TAGS) -trimpath \
		-ldflags '$(LDFLAGS)' -o $(ARTIFACTS_DIR)/bootstrap ./functions/read

# The publisher reads no configuration: it has nothing to copy.
build-PublisherFunction:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(GOARCH_LAMBDA) $(GO) build -tags $(LAMBDA_TAGS) -trimpath \
		-ldflags '$(LDFLAGS)' -o $(ARTIFACTS_DIR)/bootstrap ./functions/publish

deploy:
	sam build && sam deploy

standins-start:
	bash scripts/standins.sh start

standins-stop:
	bash scripts/standins.sh stop

clean:
	rm -rf .aws-sam bin .standins .halosync load.out .artifacts
