#!/usr/bin/env bash
# bench.sh: every package's Go benchmarks, then the end-to-end harnesses. Run it through `make bench`
# (testenv.sh provides the private Mosquitto and PostgreSQL; bin/ is built).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
echo "== Go benchmarks (go test -run '^\$' -bench . -benchmem ./...)"
go test -run '^$' -bench . -benchmem -timeout 30m ./...

work=$(mktemp -d /tmp/fieldgate-bench.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$work"' EXIT

# start_mosquitto VAR NAME [LINES...] starts a private Mosquitto with the given extra configuration lines and sets
# VAR to its port. (Not called as $(...): its PID must reach pids in this shell, for the trap to stop it.)
start_mosquitto() {
	local var=$1 name=$2 port
	shift 2
	port=$(free_port)
	{
		echo "listener $port 127.0.0.1"
		echo "allow_anonymous true"
		echo "persistence false"
		echo "user root"
		printf '%s\n' "$@"
	} >"$work/$name.conf"
	mosquitto -c "$work/$name.conf" >"$work/$name.log" 2>&1 &
	pids+=($!)
	wait_port "$port" 10 mosquitto >&2
	printf -v "$var" '%s' "$port"
}

# A plant's steady rates, through a Mosquitto with its default limits (20 messages in flight per client, 1,000
# queued): the operating point that matters on a Raspberry Pi's SD card.
start_mosquitto steady steady
echo
echo "== gateway at steady rates: Mosquitto (default limits) -> gateway (durable buffer) -> Kafka, beside do-nothing paho subscribers"
bin/devsim bench -gateway bin/gateway -mqtt "tcp://127.0.0.1:$steady" -rate 500 -duration 20s -rounds 3 -payload json
bin/devsim bench -gateway bin/gateway -mqtt "tcp://127.0.0.1:$steady" -rate 2000 -duration 20s -rounds 3 -payload json

# At full speed, one publisher as fast as it can. With Mosquitto's defaults any receiver slower than the
# publisher loses messages in the broker, the baseline too; so this Mosquitto has the settings README.md
# recommends for high rates, and the gateway's input is told its in-flight limit (max_inflight), as README.md
# says to. Both receivers get the same broker.
start_mosquitto fast fast "max_inflight_messages 1000" "max_queued_messages 1000000"
echo
echo "== gateway at full speed: Mosquitto -> gateway (durable buffer) -> Kafka, beside a do-nothing paho subscriber"
bin/devsim bench -gateway bin/gateway -mqtt "tcp://127.0.0.1:$fast" -n 50000 -rounds 3 -payload json -input "max_inflight: 1000"
bin/devsim bench -gateway bin/gateway -mqtt "tcp://127.0.0.1:$fast" -n 50000 -rounds 3 -payload value -input "max_inflight: 1000"

# Footprint. Binary sizes as packaged (static, stripped; make package builds them the same way). Then an idle
# gateway: exec to /readyz and memory after 10 s idle, natively and, as a relative figure only, the arm64 build
# under qemu-user (which says nothing about a Pi's CPU or SD card). Last, the arm64 gateway's memory under the
# steady 500 msg/s above; the native gateway's is in that run's last columns.
echo
echo "== binary size (CGO_ENABLED=0 go build -trimpath -ldflags '-s -w'); target: arm64 gateway <= 20 MB"
mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%5.1f MB", b / 1e6 }'; }
for t in amd64 arm64 armv7 armv6 armv5; do
	goarm=${t#armv}
	[ "$goarm" = "$t" ] && goarm=
	for prog in gateway central; do
		CGO_ENABLED=0 GOOS=linux GOARCH=${t%v?} GOARM=$goarm \
			go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$work/$t/$prog" ./cmd/$prog
	done
	echo "$t	gateway $(mb "$work/$t/gateway")   central $(mb "$work/$t/central")"
done
echo
echo "== idle gateway: median of 5 starts with one MQTT input (Mosquitto above) and Kafka (kfake)"
command -v qemu-aarch64-static >/dev/null || apt_install qemu-user-static
bin/devsim footprint -gateway bin/gateway -gateway-arm64 "$work/arm64/gateway" -mqtt "tcp://127.0.0.1:$steady" -runs 5 -idle 10s
echo
echo "== arm64 gateway under qemu-user at a steady 500 msg/s (RSS includes the emulator: compare the Go heap with the native run above)"
bin/devsim bench -exec qemu-aarch64-static -gateway "$work/arm64/gateway" -mqtt "tcp://127.0.0.1:$steady" -rate 500 -duration 20s -rounds 3 -payload json
