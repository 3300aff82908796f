#!/usr/bin/env bash
# version.sh prints fieldgate's version from git. The binaries print it (`version`), it is the packages' Debian
# version and the images' tag, so it uses only letters, digits and dots (Debian versions may not hold "_", image
# tags may not hold "+" or "~"), and dpkg orders it by commit:
#   at a tag vX.Y.Z        X.Y.Z
#   N commits after it     X.Y.Z.gitN.SHA      (above X.Y.Z, below the next release)
#   no tag yet             0.0.0.gitN.SHA      (N counted from the first commit)
#   uncommitted changes    the above + .dirty
set -euo pipefail
cd "$(dirname "$0")/.."
sha=$(git rev-parse --short=7 HEAD 2>/dev/null) || { echo 0.0.0.unknown; exit 0; }
if desc=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
	# vX.Y.Z-N-gSHA
	n=${desc%-g*}
	n=${n##*-}
	base=${desc%-*-g*}
	base=${base#v}
else
	base=0.0.0
	n=$(git rev-list --count HEAD)
fi
v=$base
if [ "$n" != 0 ] || [ "$base" = 0.0.0 ]; then
	v="$base.git$n.$sha"
fi
if ! git diff --quiet HEAD -- 2>/dev/null; then
	v="$v.dirty"
fi
echo "$v"
