#!/usr/bin/env bash
# Builds dist/bootlace_<version>_all.deb from dist/bootlace.js (run `npm run build` first; `npm run package` does
# both) with dpkg-deb: the bundle, /usr/bin/bootlace, the systemd units, the init script, an inert example
# configuration as a conffile, the docs, and maintainer scripts that enable the service without starting it.
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

install -D -m 0755 dist/bootlace.js "$stage/usr/lib/bootlace/bootlace.js"
# A relative link: the bundle's shebang finds node on PATH, and the tree also works unpacked under another root.
mkdir -p "$stage/usr/bin"
ln -s ../lib/bootlace/bootlace.js "$stage/usr/bin/bootlace"
install -D -m 0644 systemd/bootlace.service "$stage/usr/lib/systemd/system/bootlace.service"
install -D -m 0644 systemd/bootlace-watch.service "$stage/usr/lib/systemd/system/bootlace-watch.service"
install -D -m 0755 initd/bootlace "$stage/etc/init.d/bootlace"
install -D -m 0644 packaging/bootlace.yaml "$stage/etc/bootlace/bootlace.yaml"
mkdir -p "$stage/etc/bootlace/conf.d" "$stage/var/lib/bootlace"
doc="$stage/usr/share/doc/bootlace"
install -D -m 0644 README.md "$doc/README.md"
install -D -m 0644 packaging/copyright "$doc/copyright"
install -D -m 0644 -t "$doc/docs" docs/*.md
install -D -m 0644 initd/rc.local.snippet "$doc/examples/rc.local.snippet"

mkdir -p "$stage/DEBIAN"
installed_kib=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_kib/" packaging/deb/control >"$stage/DEBIAN/control"
install -m 0755 packaging/deb/postinst packaging/deb/postrm "$stage/DEBIAN/"
# Everything under /etc is a conffile: dpkg keeps an administrator's edits across upgrades.
(cd "$stage" && find etc -type f | sort | sed 's|^|/|') >"$stage/DEBIAN/conffiles"

export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
rm -f "$out"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "built $out ($(($(stat -c %s "$out") / 1024)) KiB)"
