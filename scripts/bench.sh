#!/usr/bin/env bash
# bench.sh: every package's Go benchmarks, then the end-to-end harnesses. Run it through `make bench`
# (testenv.sh provides the private Mosquitto and PostgreSQL; bin/ is built).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
echo "== Go benchmarks (go test -run '^\$' -bench . -benchmem ./...)"
go test -run '^$' -bench . -benchmem -timeout 30m ./...

# The end-to-end harness publishes as fast as one client can. With Mosquitto's defaults (20 messages in flight
# per client, 1,000 queued) any receiver slower than the publisher loses messages in the broker, the baseline
# too; so this Mosquitto has the settings README.md recommends for high rates. Both receivers get the same one.
work=$(mktemp -d /tmp/fieldgate-bench.XXXXXX)
port=$(free_port)
cat >"$work/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
user root
max_inflight_messages 1000
max_queued_messages 1000000
CONF
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mpid=$!
trap 'kill $mpid 2>/dev/null; wait $mpid 2>/dev/null; rm -rf "$work"' EXIT
wait_port "$port" 10 mosquitto
echo
echo "== gateway end to end: Mosquitto -> gateway (durable buffer) -> Kafka, beside a do-nothing paho subscriber"
bin/devsim bench -gateway bin/gateway -mqtt "tcp://127.0.0.1:$port" -n 50000 -rounds 3 -payload json
bin/devsim bench -gateway bin/gateway -mqtt "tcp://127.0.0.1:$port" -n 50000 -rounds 3 -payload value
