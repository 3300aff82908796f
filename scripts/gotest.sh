#!/usr/bin/env bash
# gotest.sh: go vet, then every test with the race detector, then the gateway's tests on ARM under qemu-user,
# then the packages and images (tools/dist). Run it through testenv.sh so the integration tests find their
# servers.
#
# Most packages run in parallel. The gateway's end-to-end tests then run alone: one holds 2,000 msg/s against
# Mosquitto's default limits, and on a 2-core machine shared with other packages' tests the gateway process is
# starved of CPU, acknowledges late, and the broker drops what it cannot deliver; that would measure the
# machine, not the gateway. The ARM and packaging runs come after, for the same reason.
set -uo pipefail
cd "$(dirname "$0")/.."
go vet ./... || exit 1
go -C tools vet ./... || exit 1
rc=0
go test -race -timeout 20m -count=1 $(go list ./... | grep -v -e '/cmd/gateway$') || rc=1
go test -race -timeout 20m -count=1 ./cmd/gateway || rc=1
# the patched gopcua is a module of its own (third_party/gopcua/PATCHES.md); TestResolveEndpoint needs DNS
(cd third_party/gopcua && go test -race -count=1 ./ua ./uasc . && go test -race -count=1 -skip TestResolveEndpoint ./uacp &&
	GOARCH=386 go test -count=1 ./ua) || rc=1
# so is the patched paho (third_party/paho.mqtt.golang/PATCHES.md)
(cd third_party/paho.mqtt.golang && go test -race -count=1 . ./packets) || rc=1

# arm_test GOARCH GOARM EMULATOR: the gateway's packages cross-compiled for GOARCH and run under qemu-user with
# `go test -exec` (binfmt_misc is not available here). Tests that start the test binary again, or a gateway
# they built, run it through the same emulator (FIELDGATE_TEST_EMULATOR, see internal/testutil). The hermetic
# tier only (-short, no test servers): qemu checks the code on the architecture (32-bit words, 64-bit atomics'
# alignment, bbolt's mapping), not the board's speed, fsync or SD card. GODEBUG=asyncpreemptoff=1, the usual
# remedy for Go hangs under qemu (golang/go#36981), has not been needed: the hangs and flakes seen under qemu's
# timing were in gopcua's test server (a deadlock when a subscription ends, reused subscription ids), fixed in
# third_party/gopcua (PATCHES.md).
arm_test() {
	(
		for v in ${!FIELDGATE_TEST_@}; do unset "$v"; done
		export CGO_ENABLED=0 GOOS=linux GOARCH="$1" GOARM="$2" FIELDGATE_TEST_EMULATOR="$3"
		echo "== go test -short under $3 (GOARCH=$1${2:+ GOARM=$2})"
		go test -short -timeout 20m -count=1 -exec "$3" . ./buffer ./forward ./protocols/... ./cmd/gateway
	)
}
arm_test arm64 "" qemu-aarch64-static || rc=1
arm_test arm 7 "qemu-arm-static -cpu cortex-a7" || rc=1

# Packages and images: built, reproduced, installed into a scratch root, linted, run on every platform.
go -C tools test -v -timeout 30m -count=1 ./... || rc=1
exit $rc
