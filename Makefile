# gantry — see README.md. Every target installs what it needs.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
export LAB_STATE ?= /tmp/gantry-lab
LAB_CONFIG := lab/gantry.yml
UNIT_PKGS = $$(go list ./... | grep -v /e2e)

.PHONY: build test vet unit integration lab lab-down demo bench clean

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

build:
	go build -ldflags "-X main.version=$(VERSION)" -o bin/gantry ./cmd/gantry
	go build -o bin/loadgen ./lab/cmd/loadgen

## test: vet, unit tests, then integration tests against the lab (started when needed)
test: vet unit integration

vet:
	go vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi

unit:
	go test -count=1 $(UNIT_PKGS)

# The integration tests need the 24-host lab (environment big).
integration:
	LAB_HOSTS=$${LAB_HOSTS:-24} lab/up
	GANTRY_LAB_CONFIG=$(LAB_CONFIG) go test -count=1 -v -timeout 45m ./e2e

## lab: start the local fleet on loopback (idempotent); lab-down stops it
lab:
	lab/up

lab-down:
	lab/down

## demo: build, start the lab, deploy two versions under load, print the summary
demo: build lab
	lab/demo

## bench: deploy and rollback timings against the bare-operations floor (raw,
## and with the same waits), under load, on the 24-host lab (BENCH_RUNS times
## each, default 3); then the engine against simulated fleets of 100-5,000 hosts
bench: build
	LAB_HOSTS=$${LAB_HOSTS:-24} lab/up
	go run ./bench
	go run ./bench/sim

clean:
	rm -rf bin
