# Shared shell functions for the Makefile's scripts. Source it; it sets nothing by itself.

# free_port prints a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

# wait_port PORT SECONDS NAME waits until something listens on 127.0.0.1:PORT.
wait_port() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "testenv: $3 did not listen on 127.0.0.1:$1 within $2 s" >&2
	return 1
}

apt_install() {
	local missing=("$@")
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "installing with apt-get: ${missing[*]}" >&2
	local sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pg_bindir prints the folder of PostgreSQL's server binaries (initdb, pg_ctl).
pg_bindir() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && echo "$d"
	done | sort -V | tail -n 1
}

# ensure_packages installs the test servers and clients that are missing: Mosquitto, kcat, PostgreSQL, Node.js,
# the tools of the ARM and packaging tests: qemu-user-static, lintian, systemd-analyze, protoc (the Sparkplug B
# code generation test), and Chromium (the status pages' browser tests).
ensure_packages() {
	local missing=()
	command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
	command -v kcat >/dev/null || missing+=(kcat)
	[ -n "$(pg_bindir)" ] || missing+=(postgresql)
	command -v node >/dev/null || missing+=(nodejs)
	command -v npm >/dev/null || missing+=(npm)
	command -v runuser >/dev/null || missing+=(util-linux)
	command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
	command -v lintian >/dev/null || missing+=(lintian)
	command -v systemd-analyze >/dev/null || missing+=(systemd)
	command -v protoc >/dev/null || missing+=(protobuf-compiler)
	command -v chromium >/dev/null || missing+=(chromium)
	apt_install "${missing[@]}"
	export PATH="$PATH:/usr/sbin"
}

# ensure_npm installs scripts/npm's pinned packages when package-lock.json changed since the last install.
ensure_npm() {
	[ -f scripts/npm/package.json ] || return 0
	local stamp=scripts/npm/node_modules/.fieldgate-installed
	if [ ! -f "$stamp" ] || [ scripts/npm/package-lock.json -nt "$stamp" ]; then
		echo "installing npm packages in scripts/npm" >&2
		(cd scripts/npm && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
		touch "$stamp"
	fi
}
