#!/usr/bin/env bash
# Installs what the tests need beyond npm, from Debian's packages: dpkg-deb and dpkg (the .deb), systemd-analyze
# (unit verification, the units' security score), shellcheck, lintian (Debian's checks on the .deb), strip (the
# single executable), Debian's python3 and the libraries cloud-init imports, and apt's package lists (cloud-init
# itself is fetched with apt-get download, see cloud-init-unpack.sh); for the boot test (test/boot/), QEMU, qemu-img,
# socat (QEMU's forwards to the emulators), debootstrap, zstd and mke2fs; the real consumers of the hostile-values
# matrix (test/integration/hostile-values.test.ts): php-cli (php -l and including the file) and postgresql (a
# throw-away cluster's pg_hba_file_rules; the package also creates the postgres user the cluster runs as).
# Called by .ci/run and the boot test; does nothing when all is there.
# Needs root for apt-get.
set -euo pipefail
need=()
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v lintian >/dev/null || need+=(lintian)
command -v strip >/dev/null || need+=(binutils)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v socat >/dev/null || need+=(socat)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v zstd >/dev/null || need+=(zstd)
command -v mke2fs >/dev/null || need+=(e2fsprogs)
command -v php >/dev/null || need+=(php-cli)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
# cloud-init's own code (unpacked from Debian's packages by scripts/cloud-init-unpack.sh, never installed) runs on
# Debian's python3 with these libraries: the user-data tests run cloud-init 22.4 and 25.1 on every documented example.
[[ -x /usr/bin/python3 ]] || need+=(python3)
for lib in python3-yaml python3-requests python3-configobj python3-jinja2 python3-jsonpatch python3-jsonschema \
	python3-netifaces python3-oauthlib python3-serial; do
	dpkg-query -W -f '${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" || need+=("$lib")
done
if ((${#need[@]})) || ! compgen -G "/var/lib/apt/lists/*_Packages" >/dev/null; then
	apt-get update -qq
fi
if ((${#need[@]})); then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	echo "ci-deps: installed ${need[*]}"
fi
