#!/usr/bin/env bash
# testenv.sh COMMAND [ARGS...]
#
# Runs COMMAND with private test servers started for it, and stops them afterwards by PID:
#   Mosquitto         FIELDGATE_TEST_MQTT, FIELDGATE_TEST_MOSQUITTO
#   PostgreSQL 15     FIELDGATE_TEST_POSTGRES, FIELDGATE_TEST_POSTGRES_BIN
#   kcat              FIELDGATE_TEST_KCAT
#   npm servers       FIELDGATE_TEST_NPM_DIR, FIELDGATE_TEST_MODBUS_NPM, FIELDGATE_TEST_OPCUA_NPM
#   npm edge node     FIELDGATE_TEST_SPARKPLUG_NPM (a Sparkplug B edge node script; each test starts its own)
#   protoc            FIELDGATE_TEST_PROTOC (regenerates protocols/mqtt/sparkplugb to compare)
#   Chromium          FIELDGATE_TEST_CHROMIUM (headless: the status pages' browser tests; each run is its own)
# Every server gets its own port and a temporary directory; nothing touches the system's own Mosquitto or
# PostgreSQL. Missing Debian packages are installed with apt-get, npm packages with npm ci.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/lib.sh

ensure_packages

work=$(mktemp -d /tmp/fieldgate-testenv.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	local rc=$?
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ -n "${pg_data:-}" ] && [ -f "$pg_data/postmaster.pid" ]; then
		runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT INT TERM

# Mosquitto, with its default in-flight and queue limits and persistence on.
mqtt_port=$(free_port)
mkdir -p "$work/mosquitto"
cat >"$work/mosquitto/mosquitto.conf" <<CONF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $work/mosquitto/
user root
log_dest file $work/mosquitto/mosquitto.log
CONF
mosquitto -c "$work/mosquitto/mosquitto.conf" &
pids+=($!)
export FIELDGATE_TEST_MQTT="tcp://127.0.0.1:$mqtt_port"
export FIELDGATE_TEST_MOSQUITTO="$(command -v mosquitto)"
export FIELDGATE_TEST_KCAT="$(command -v kcat)"
export FIELDGATE_TEST_PROTOC="$(command -v protoc)"
export FIELDGATE_TEST_CHROMIUM="$(command -v chromium)"

# PostgreSQL: initdb refuses root, so the cluster belongs to the postgres user.
pg_bin=$(pg_bindir)
pg_port=$(free_port)
pg_dir="$work/postgres"
pg_data="$pg_dir/data"
mkdir -p "$pg_dir" && chown postgres "$pg_dir"
runuser -u postgres -- "$pg_bin/initdb" -D "$pg_data" -A trust -U postgres --no-sync >"$work/initdb.log" 2>&1 ||
	{ cat "$work/initdb.log"; exit 1; }
runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_dir/postgres.log" -w -t 60 \
	-o "-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null ||
	{ cat "$pg_dir/postgres.log"; exit 1; }
export FIELDGATE_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres?sslmode=disable"
export FIELDGATE_TEST_POSTGRES_BIN="$pg_bin"

# Third-party Modbus and OPC UA servers from npm.
ensure_npm
export FIELDGATE_TEST_NPM_DIR="$root/scripts/npm"
if [ -f scripts/npm/modbus-server.js ]; then
	modbus_port=$(free_port)
	node scripts/npm/modbus-server.js --port "$modbus_port" >"$work/modbus-npm.log" 2>&1 &
	pids+=($!)
	export FIELDGATE_TEST_MODBUS_NPM="127.0.0.1:$modbus_port"
fi
if [ -f scripts/npm/sparkplug-edge.js ]; then
	export FIELDGATE_TEST_SPARKPLUG_NPM="$root/scripts/npm/sparkplug-edge.js"
fi
if [ -f scripts/npm/opcua-server.js ]; then
	opcua_port=$(free_port)
	mkdir -p "$work/opcua-pki"
	node scripts/npm/opcua-server.js -port "$opcua_port" -pki "$work/opcua-pki" -auto-accept >"$work/opcua-npm.log" 2>&1 &
	pids+=($!)
	export FIELDGATE_TEST_OPCUA_NPM="opc.tcp://127.0.0.1:$opcua_port"
fi

wait_port "$mqtt_port" 10 mosquitto
[ -n "${modbus_port:-}" ] && wait_port "$modbus_port" 30 "modbus-serial server"
[ -n "${opcua_port:-}" ] && wait_port "$opcua_port" 120 "node-opcua server"

echo "testenv: mosquitto $FIELDGATE_TEST_MQTT, postgres 127.0.0.1:$pg_port${modbus_port:+, modbus npm :$modbus_port}${opcua_port:+, opcua npm :$opcua_port}"
"$@"
