#!/usr/bin/env bash
# gotest.sh: go vet, then every test with the race detector. Run it through testenv.sh so the integration
# tests find their servers.
set -euo pipefail
cd "$(dirname "$0")/.."
go vet ./...
go test -race -timeout 20m -count=1 ./...
