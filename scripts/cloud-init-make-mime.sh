#!/usr/bin/env bash
# Runs Debian's own `cloud-init devel make-mime` without installing cloud-init: the package would enable cloud-init's
# boot services on this machine, so it is only unpacked into .cache/cloud-init, and run with Debian's python3 and
# the Python libraries it imports (installed with apt-get: libraries only, no services). Arguments go to make-mime:
#   scripts/cloud-init-make-mime.sh -a cloud.yaml:cloud-config -a boot.sh:x-shellscript > user-data
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache="$repo/.cache/cloud-init"
python=/usr/bin/python3
libs=(python3-yaml python3-requests python3-configobj python3-jinja2 python3-jsonpatch python3-jsonschema
	python3-netifaces python3-oauthlib python3-serial)

if [[ ! -d $cache/usr/lib/python3/dist-packages/cloudinit ]]; then
	command -v apt-get >/dev/null || {
		echo "cloud-init-make-mime: needs apt-get (Debian's cloud-init package)" >&2
		exit 1
	}
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	# apt's download user must be able to write there.
	chmod 0777 "$work"
	(cd "$work" && apt-get download -q cloud-init >/dev/null 2>"$work/apt.log") || {
		cat "$work/apt.log" >&2
		echo "cloud-init-make-mime: apt-get download cloud-init failed (run apt-get update?)" >&2
		exit 1
	}
	mkdir -p "$(dirname "$cache")"
	rm -rf "$cache.partial"
	dpkg-deb -x "$work"/cloud-init_*.deb "$cache.partial"
	rm -rf "$cache"
	mv "$cache.partial" "$cache"
fi

missing=()
for lib in "${libs[@]}"; do
	dpkg-query -W -f '${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" || missing+=("$lib")
done
if ((${#missing[@]})); then
	if [[ $(id -u) != 0 ]]; then
		echo "cloud-init-make-mime: needs ${missing[*]} (apt-get install, as root)" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# `cloud-init` itself is this module's console entry point.
PYTHONPATH="$cache/usr/lib/python3/dist-packages" exec "$python" -m cloudinit.cmd.main devel make-mime "$@"
