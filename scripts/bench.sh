#!/usr/bin/env bash
# bench.sh: every package's Go benchmarks, then the end-to-end harnesses. Run it through `make bench`
# (testenv.sh provides the private Mosquitto and PostgreSQL; bin/ is built).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== Go benchmarks (go test -run '^\$' -bench . -benchmem ./...)"
go test -run '^$' -bench . -benchmem -timeout 30m ./...
echo
echo "== gateway end to end: Mosquitto -> gateway (durable buffer) -> Kafka, beside a do-nothing paho subscriber"
bin/devsim bench -gateway bin/gateway -mqtt "$FIELDGATE_TEST_MQTT" -n 50000 -rounds 3 -payload json
bin/devsim bench -gateway bin/gateway -mqtt "$FIELDGATE_TEST_MQTT" -n 50000 -rounds 3 -payload value
