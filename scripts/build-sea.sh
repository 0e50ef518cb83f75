#!/usr/bin/env bash
# Builds dist/bootlace-linux-x64: dist/bootlace-sea.js (the agent without dist/bootlace.js's code-cache launcher: the
# executable has Node's own code cache, useCodeCache) inside a copy of an official Node binary (Node's single
# executable application mechanism, injected with postject), for hosts that have no Node. Run `npm run build` first;
# `npm run sea` does both. The Node it embeds is fetched by scripts/fetch-node.sh (BOOTLACE_SEA_NODE overrides the
# version); the blob must be made by that same Node, so the build runs it for that.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/node-versions.env
. scripts/node-versions.env
version=${BOOTLACE_SEA_NODE:-$NODE_SEA}
out=dist/bootlace-linux-x64
[[ -f dist/bootlace-sea.js ]] || {
	echo "build-sea: dist/bootlace-sea.js is missing: run npm run build" >&2
	exit 1
}
node=$(bash scripts/fetch-node.sh "$version")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/sea-config.json" <<EOF
{
  "main": "$PWD/dist/bootlace-sea.js",
  "output": "$work/bootlace.blob",
  "disableExperimentalSEAWarning": true,
  "useCodeCache": true
}
EOF
"$node" --experimental-sea-config "$work/sea-config.json" >"$work/blob.log" 2>&1 || {
	cat "$work/blob.log" >&2
	exit 1
}
# Node's symbols are of no use on an instance (-17 MiB). Stripped before the injection, which adds the blob as a note.
if command -v strip >/dev/null; then
	strip --strip-all -o "$work/bootlace" "$node"
else
	echo "build-sea: strip not found (binutils): the binary keeps Node's symbols" >&2
	cp "$node" "$work/bootlace"
fi
chmod 0755 "$work/bootlace"
# postject (LIEF) warns about Node's unnamed note sections; its output matters only when it fails.
node_modules/.bin/postject "$work/bootlace" NODE_SEA_BLOB "$work/bootlace.blob" \
	--sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 >"$work/postject.log" 2>&1 || {
	cat "$work/postject.log" >&2
	exit 1
}
mv "$work/bootlace" "$out"
echo "built $out ($(($(stat -c %s "$out") / 1024 / 1024)) MiB, Node v$version inside)"
