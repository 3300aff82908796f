# fieldgate — see README.md. Every target installs what it is missing (Go toolchain, Debian packages, npm
# packages) and keeps its servers private: own ports, temporary directories, stopped by PID.
SHELL := /bin/bash
export PATH := $(shell scripts/ensure-go.sh):$(PATH):/usr/sbin
VERSION ?= $(shell scripts/version.sh)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null)
# Every time stamp in the packages and images: the same commit gives byte-identical files.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BINARIES := gateway central devsim

.PHONY: demo test test-short bench build build-arm64 build-armv7 package fuzz clean FORCE

## demo: a simulated plant, the gateway and the central service, data flowing end to end, until Ctrl-C
demo: build
	scripts/demo.sh

## test: go vet and the whole test suite with -race against private Mosquitto, PostgreSQL, kcat and npm servers;
## then the gateway's tests on arm64 and ARMv7 under qemu-user, and the packages and images (scripts/gotest.sh)
test:
	scripts/testenv.sh scripts/gotest.sh

## test-short: the hermetic tier only, nothing installed or started
test-short:
	go test -short ./...

## bench: micro-benchmarks of every package, then the end-to-end harnesses
bench: build
	scripts/testenv.sh scripts/bench.sh

## build: the three binaries for this machine, into bin/
build: $(addprefix bin/,$(BINARIES))

bin/%: FORCE
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/$*

## build-arm64, build-armv7: the gateway for Raspberry Pi and industrial PCs (pure Go, CGO_ENABLED=0)
build-arm64:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/linux-arm64/gateway ./cmd/gateway
build-armv7:
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/linux-armv7/gateway ./cmd/gateway

## package: .deb packages (gateway: amd64, arm64, armhf, armel; central: amd64, arm64) and multi-arch OCI images
## (linux/amd64, arm64, arm/v7, arm/v6) into dist/, built by tools/dist (pure Go, tools/go.mod)
package:
	go -C tools run ./dist -version $(VERSION) -commit $(COMMIT) -epoch $(SOURCE_DATE_EPOCH) -root .. -out ../dist

## fuzz: run every fuzz test for FUZZTIME each (default 30s)
FUZZTIME ?= 30s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin dist .cache/demo
