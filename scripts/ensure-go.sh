#!/usr/bin/env bash
# ensure-go.sh prints the folder of a Go toolchain new enough for go.mod (Go 1.26), installing one if needed:
# the machine's own go if it is new enough, else the official toolchain module (golang.org/toolchain) from the
# Go module proxy named by GOPROXY (its first entry), unpacked under ~/.cache/fieldgate. Progress goes to
# stderr; stdout is only the folder.
set -euo pipefail
want=1.26.8

new_enough() { # new_enough GO_BINARY
	local v
	v=$("$1" env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	[ "$(printf '%s\n%s\n' 1.26 "$v" | sort -V | head -n 1)" = 1.26 ]
}

for go in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go "$HOME/.cache/fieldgate/go$want/bin/go"; do
	if [ -n "$go" ] && [ -x "$go" ] && new_enough "$go"; then
		dirname "$go"
		exit 0
	fi
done

case "$(uname -m)" in
x86_64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
armv6l | armv7l) arch=armv6l ;;
*) echo "ensure-go: no Go toolchain for $(uname -m)" >&2; exit 1 ;;
esac
missing=()
command -v curl >/dev/null || missing+=(curl ca-certificates)
command -v unzip >/dev/null || missing+=(unzip)
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing with apt-get: ${missing[*]}" >&2
	apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
proxy=${GOPROXY%%,*}
if [ -z "$proxy" ] || [ "$proxy" = direct ] || [ "$proxy" = off ]; then
	echo "ensure-go: no Go >= 1.26 found. Install Go 1.26 (go.dev/dl), or set GOPROXY to a Go module proxy URL" >&2
	echo "ensure-go: to have the official toolchain module fetched from it." >&2
	exit 1
fi
dest="$HOME/.cache/fieldgate"
mod="v0.0.1-go$want.linux-$arch"
echo "downloading Go $want ($mod) from the Go module proxy" >&2
mkdir -p "$dest"
tmp=$(mktemp -d "$dest/dl.XXXXXX")
curl -fsSL -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/$mod.zip"
unzip -q "$tmp/go.zip" -d "$tmp"
rm -rf "$dest/go$want"
mv "$tmp/golang.org/toolchain@$mod" "$dest/go$want"
chmod +x "$dest/go$want/bin/"* "$dest/go$want/pkg/tool/"*/* 2>/dev/null || true
rm -rf "$tmp"
echo "$dest/go$want/bin"
