#!/usr/bin/env bash
# Unpacks Debian's cloud-init package, never installing it (installing would enable cloud-init's boot services on
# this machine), and prints the folder to put on PYTHONPATH for Debian's python3:
#   scripts/cloud-init-unpack.sh bookworm   # cloud-init 22.4 (Debian 12), from this machine's own apt sources
#   scripts/cloud-init-unpack.sh trixie     # cloud-init 25.1 (Debian 13), from a trixie source list of our own
# The trixie list lives only in a private apt configuration under .cache/apt-trixie (its own sources.list, lists and
# cache), so this machine's apt is not changed. The Python libraries cloud-init imports are Debian's python3-* packages
# (libraries only, no services), installed by scripts/ci-deps.sh, or here when run as root.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
release=${1:?usage: cloud-init-unpack.sh bookworm|trixie}
case $release in
bookworm) version='22.4*' cache="$repo/.cache/cloud-init" ;;
trixie) version='25.1*' cache="$repo/.cache/cloud-init-trixie" ;;
*)
	echo "cloud-init-unpack: unknown release $release (bookworm or trixie)" >&2
	exit 2
	;;
esac
libs=(python3-yaml python3-requests python3-configobj python3-jinja2 python3-jsonpatch python3-jsonschema
	python3-netifaces python3-oauthlib python3-serial)
site="$cache/usr/lib/python3/dist-packages"

fail() {
	echo "cloud-init-unpack: $*" >&2
	exit 1
}

if [[ ! -d $site/cloudinit ]]; then
	command -v apt-get >/dev/null || fail "needs apt-get (Debian's cloud-init package)"
	command -v dpkg-deb >/dev/null || fail "needs dpkg-deb (apt-get install dpkg)"
	apt=()
	if [[ $release == trixie ]]; then
		private="$repo/.cache/apt-trixie"
		mkdir -p "$private/lists/partial" "$private/cache/archives/partial" "$private/sources.list.d"
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
			>"$private/sources.list"
		apt=(-o "Dir::Etc::sourcelist=$private/sources.list" -o "Dir::Etc::sourceparts=$private/sources.list.d"
			-o "Dir::State::Lists=$private/lists" -o "Dir::Cache=$private/cache" -o "APT::Sandbox::User=root")
		apt-get "${apt[@]}" update -qq >"$private/update.log" 2>&1 || {
			cat "$private/update.log" >&2
			fail "apt-get update of the private trixie list failed"
		}
	fi
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	# apt's download user must be able to write there.
	chmod 0777 "$work"
	(cd "$work" && apt-get "${apt[@]}" download -q "cloud-init=$version" >/dev/null 2>"$work/apt.log") || {
		cat "$work/apt.log" >&2
		fail "apt-get download cloud-init=$version failed (run apt-get update?)"
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
	[[ $(id -u) == 0 ]] || fail "needs ${missing[*]} (scripts/ci-deps.sh, or apt-get install as root)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "$site"
