#!/usr/bin/env bash
# One file out of a Debian 12 package, never installed: downloads the package with apt-get into .cache/debian/ (once)
# and prints the path of the file taken out of it. The docs' examples are tested on such real files:
#   scripts/debian-file.sh wordpress /usr/share/wordpress/wp-config-sample.php
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
package=${1:?usage: debian-file.sh PACKAGE /PATH/IN/PACKAGE}
path=${2:?usage: debian-file.sh PACKAGE /PATH/IN/PACKAGE}
cache="$repo/.cache/debian/$package"
out="$cache/files$path"

if [[ ! -f $out ]]; then
	command -v apt-get >/dev/null || {
		echo "debian-file: needs apt-get" >&2
		exit 1
	}
	mkdir -p "$cache"
	if ! compgen -G "$cache/${package}_*.deb" >/dev/null; then
		work=$(mktemp -d)
		trap 'rm -rf "$work"' EXIT
		# apt's download user must be able to write there.
		chmod 0777 "$work"
		(cd "$work" && apt-get download -q "$package" >/dev/null 2>"$work/apt.log") || {
			cat "$work/apt.log" >&2
			echo "debian-file: apt-get download $package failed (run apt-get update?)" >&2
			exit 1
		}
		mv "$work/${package}"_*.deb "$cache/"
	fi
	mkdir -p "$(dirname "$out")"
	dpkg-deb --fsys-tarfile "$cache/${package}"_*.deb | tar -xO ".$path" >"$out.partial"
	mv "$out.partial" "$out"
fi
echo "$out"
