#!/usr/bin/env bash
# The boot test's guest images (test/boot/): the base root file system from scripts/boot-base.sh, bootlace installed
# into it from the project's .deb by dpkg in a chroot (its postinst enables bootlace.service and the init script's
# links, as on any Debian host), the test's guest files from test/boot/guest/ (networkd, /etc/default/bootlace with
# the private AWS endpoint, the console journal, the 9p share, the reporter unit), and the gettys and apt timers masked.
# Makes, in .cache/boot/image-<key>/:
#   vmlinuz, initrd.img   the Debian kernel and its initramfs (booted with -kernel/-initrd, root=/dev/vda)
#   systemd.img           ext4 image: bootlace.service as packaged
#   initd.img             the same, as an administrator would switch it to the LSB script: the native unit disabled
#                         and diverted away, so systemd's sysv generator makes bootlace.service from /etc/init.d
# <key> is a hash of every input (the base's name, the .deb, this script, test/boot/guest/); the images are read-only
# and the tests boot them through overlays or snapshot=on, so the cache stays pristine. Prints the folder.
# Usage: scripts/boot-image.sh [DEB] (default dist/bootlace_<version>_all.deb, from `npm run package`). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version')
deb=${1:-dist/bootlace_${version}_all.deb}
[[ -f $deb ]] || {
	echo "boot-image: $deb is missing: run npm run package" >&2
	exit 1
}
base=$(bash scripts/boot-base.sh)

guest=test/boot/guest
key=$(
	{
		basename "$base"
		sha256sum "$deb" scripts/boot-image.sh | cut -d' ' -f1
		# The guest tree: names, modes and contents.
		(cd "$guest" && find . \( -type f -o -type l \) -printf '%p %m\n' | LC_ALL=C sort)
		(cd "$guest" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -c1-16
)
cache=.cache/boot
out="$cache/image-$key"
if [[ -f $out/ready ]]; then
	echo "$out"
	exit 0
fi
if ((EUID != 0)); then
	echo "boot-image: building the guest images needs root (chroot, dpkg)" >&2
	exit 1
fi
command -v mke2fs >/dev/null || {
	echo "boot-image: mke2fs not found (apt-get install e2fsprogs)" >&2
	exit 1
}

started=$SECONDS
work=$(mktemp -d "$cache/tmp-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
mkdir -p "$rootfs" "$work/out"
zstd -q -dc "$base" | tar --numeric-owner --xattrs -C "$rootfs" -xf -

# A command in the guest's tree, its output shown only when it fails.
in_guest() {
	chroot "$rootfs" "$@" >"$work/command.log" 2>&1 || {
		cat "$work/command.log" >&2
		echo "boot-image: in the guest: $* failed" >&2
		return 1
	}
}

# bootlace from its .deb, as a user installs it: dpkg checks the nodejs dependency and runs the postinst.
cp "$deb" "$rootfs/tmp/bootlace.deb"
in_guest dpkg -i /tmp/bootlace.deb
rm "$rootfs/tmp/bootlace.deb"

# The test's guest files, owned by root whoever checked them out.
tar -C "$guest" --owner=0 --group=0 --numeric-owner -cf - . | tar -C "$rootfs" --no-overwrite-dir -xf -
in_guest systemctl enable systemd-networkd.service systemd-networkd-wait-online.service bootlace-boot-check.service
# bootlace-watch.service too, but its drop-in (boot-test.conf) starts it only in a boot whose share asks for it.
in_guest systemctl enable bootlace-watch.service
# No login prompt on the console the host reads; nothing that would reach for the network or the disk on a timer.
in_guest systemctl mask getty.target serial-getty@ttyS0.service console-getty.service \
	apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer
[[ -L $rootfs/etc/systemd/system/multi-user.target.wants/bootlace.service && -L $rootfs/etc/rc2.d/S01bootlace ]] || {
	echo "boot-image: the .deb did not enable bootlace.service and the init script's links" >&2
	exit 1
}

cp -L "$rootfs/vmlinuz" "$work/out/vmlinuz"
cp -L "$rootfs/initrd.img" "$work/out/initrd.img"

# An ext4 image straight from the tree (no loop mount), with room for the journal and bootlace's state.
image() {
	local size_mib=$(($(du -sm "$rootfs" | cut -f1) + 384))
	rm -f "$1"
	mke2fs -q -t ext4 -L guest-root -m 0 -E root_owner=0:0 -d "$rootfs" "$1" "${size_mib}M" >/dev/null
	chmod 0444 "$1"
}
image "$work/out/systemd.img"

# The init.d variant: systemd prefers a native unit of the same name, so the LSB script only runs once
# bootlace.service is gone: disabled, and diverted (so that an upgrade of the package does not bring it back). Then
# `systemctl enable` goes through systemd's sysv compatibility (systemd-sysv-install, update-rc.d) to the script's
# rc links, which disabling the native unit had turned off too.
in_guest systemctl disable bootlace.service
in_guest dpkg-divert --local --rename --divert /usr/lib/systemd/system/bootlace.service.disabled \
	--add /usr/lib/systemd/system/bootlace.service
in_guest systemctl enable bootlace.service
[[ ! -e $rootfs/usr/lib/systemd/system/bootlace.service && -L $rootfs/etc/rc2.d/S01bootlace &&
	! -L $rootfs/etc/systemd/system/multi-user.target.wants/bootlace.service ]] || {
	echo "boot-image: the init.d variant still has the native unit, or not the init script's start links" >&2
	exit 1
}
image "$work/out/initd.img"

{
	echo "base $(basename "$base")"
	echo "deb $(basename "$deb") $(sha256sum "$deb" | cut -d' ' -f1)"
	echo "node $(chroot "$rootfs" node --version)"
	echo "kernel $(basename "$(readlink "$rootfs/vmlinuz")")"
} >"$work/out/info"
touch "$work/out/ready"
rm -rf "$cache"/image-*/
mv "$work/out" "$out"
echo "boot-image: $out in $((SECONDS - started)) s" \
	"($(du -sh --apparent-size "$out/systemd.img" | cut -f1) per image, $(du -sh "$out" | cut -f1) allocated)" >&2
echo "$out"
