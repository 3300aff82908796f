#!/usr/bin/env bash
# gotest.sh: go vet, then every test with the race detector. Run it through testenv.sh so the integration
# tests find their servers.
#
# Most packages run in parallel. The gateway's end-to-end tests then run alone: one holds 2,000 msg/s against
# Mosquitto's default limits, and on a 2-core machine shared with other packages' tests (and a cross-compile)
# the gateway process is starved of CPU, acknowledges late, and the broker drops what it cannot deliver; that
# would measure the machine, not the gateway. The cross-compile check runs last.
set -uo pipefail
cd "$(dirname "$0")/.."
go vet ./... || exit 1
rc=0
go test -race -timeout 20m -count=1 $(go list ./... | grep -v -e '/cmd/gateway$' -e '/deploy/arm64$') || rc=1
go test -race -timeout 20m -count=1 ./cmd/gateway || rc=1
# the patched gopcua is a module of its own (third_party/gopcua/PATCHES.md); TestResolveEndpoint needs DNS
(cd third_party/gopcua && go test -race -count=1 ./ua ./uasc . && go test -race -count=1 -skip TestResolveEndpoint ./uacp &&
	GOARCH=386 go test -count=1 ./ua) || rc=1
go test -timeout 20m -count=1 ./deploy/arm64 || rc=1
exit $rc
