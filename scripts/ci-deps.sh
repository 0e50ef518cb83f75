#!/usr/bin/env bash
# Installs what the tests need beyond npm, from Debian's packages: dpkg-deb and dpkg (the .deb), systemd-analyze
# (unit verification), shellcheck, strip (the single executable), and apt's package lists (cloud-init's make-mime is
# fetched with apt-get download). Called by .ci/run; does nothing when all is there. Needs root for apt-get.
set -euo pipefail
need=()
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v strip >/dev/null || need+=(binutils)
if ((${#need[@]})) || ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
	apt-get update -qq
fi
if ((${#need[@]})); then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	echo "ci-deps: installed ${need[*]}"
fi
