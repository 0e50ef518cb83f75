#!/usr/bin/env bash
# Builds dist/bootlace_<version>_all.deb from dist/bootlace.js (run `npm run build` first; `npm run package` does
# both) with dpkg-deb: the files scripts/install.sh lays out (the bundle, /usr/bin/bootlace, the systemd units, the
# init script, an inert example configuration as a conffile, the docs, the changelog, bootlace(8)), md5sums, and
# maintainer scripts that enable the service without starting it. lintian reports no error or warning on it
# (test/integration/package.test.ts).
# Ownership is root:root whoever builds it; file times are the last commit's, so the same tree gives the same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version')
out="dist/bootlace_${version}_all.deb"
[[ -f dist/bootlace.js ]] || {
	echo "package: dist/bootlace.js is missing: run npm run build" >&2
	exit 1
}
command -v dpkg-deb >/dev/null || {
	echo "package: dpkg-deb not found (Debian's dpkg package)" >&2
	exit 1
}

stage=$(mktemp -d)
chmod 0755 "$stage"
trap 'rm -rf "$stage"' EXIT
umask 022

top=$(sed -n '1s/^bootlace (\([^)]*\)).*/\1/p' packaging/changelog)
[[ $top == "$version" ]] || {
	echo "package: packaging/changelog's first entry is ${top:-unreadable}, package.json says $version: add an entry" >&2
	exit 1
}

# File times and the man page's date are the last commit's, so the same tree gives the same bytes.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"

# The same layout as a host without dpkg gets (one place says where every file goes: the bundle, the units, the
# docs, the changelog, the man page); dpkg's scripts enable.
bash scripts/install.sh --root "$stage" --no-enable

mkdir -p "$stage/DEBIAN"
installed_kib=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_kib/" packaging/deb/control >"$stage/DEBIAN/control"
install -m 0755 packaging/deb/postinst packaging/deb/postrm "$stage/DEBIAN/"
# Everything under /etc is a conffile: dpkg keeps an administrator's edits across upgrades.
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') >"$stage/DEBIAN/conffiles"
# The other files' checksums, for debsums and dpkg --verify (conffiles have their own, as dh_md5sums does it).
(cd "$stage" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | LC_ALL=C sort -z |
	xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$out"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "built $out ($(($(stat -c %s "$out") / 1024)) KiB)"
