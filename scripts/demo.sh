#!/usr/bin/env bash
# demo.sh: the simulated plant (devsim), the central service and the gateway, with a live line of what flows,
# until Ctrl-C (or for DEMO_SECONDS). Logs go to .cache/demo/. Run it through `make demo`, which builds bin/.
#   CENTRAL_DB_URL=postgres://...   load into that PostgreSQL or CrateDB (schema created) instead of printing
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
dir=.cache/demo
mkdir -p "$dir"
for port in 18831 19092 15020 14840 9100 9101; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "demo: port $port on 127.0.0.1 is in use (another demo still running?): stop it and try again" >&2
		exit 1
	fi
done
pids=()
cleanup() {
	trap - EXIT INT TERM
	echo
	echo "demo: stopping (logs in $dir/)"
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null || true
		wait "${pids[$i]}" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

echo "demo: starting the simulated plant (MQTT sensors, Modbus PLC, OPC UA server) and Kafka; logs in $dir/"
bin/devsim run -state "$dir/devsim" >"$dir/devsim.log" 2>&1 &
pids+=($!)
wait_port 19092 30 "devsim Kafka" && wait_port 18831 30 "devsim MQTT broker" &&
	wait_port 15020 30 "devsim Modbus PLC" && wait_port 14840 60 "devsim OPC UA server"

central_cfg=configs/central-demo.yaml
if [ -n "${CENTRAL_DB_URL:-}" ]; then
	central_cfg=configs/central-demo-db.yaml
	echo "demo: the central service loads into CENTRAL_DB_URL"
else
	echo "demo: the central service prints each closed window (set CENTRAL_DB_URL to load a database)"
fi
bin/central run -config "$central_cfg" 2>"$dir/central.log" &
pids+=($!)
bin/gateway run -config configs/demo.yaml >"$dir/gateway.log" 2>&1 &
pids+=($!)
wait_port 9100 30 "gateway HTTP" || { tail -n 20 "$dir/gateway.log"; exit 1; }
echo "demo: status pages http://127.0.0.1:9100/ (gateway) and http://127.0.0.1:9101/ (central); metrics at /metrics; Ctrl-C stops"
if [ -n "${DEMO_SECONDS:-}" ]; then
	timeout --foreground "$DEMO_SECONDS" bin/devsim watch || true
else
	bin/devsim watch || true
fi
