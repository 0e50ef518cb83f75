#!/usr/bin/env bash
# The base of the boot test's guest (test/boot/): a minimal Debian 12 root file system made by debootstrap —
# systemd, udev, dbus, iproute2, the stock kernel and Debian's nodejs (18) — trimmed to what a QEMU guest needs
# (virtio, ext4 and 9p modules; no docs, locales, apt caches or lists), packed as a zstd tarball under
# .cache/boot/. The tarball's name carries the SHA-256 of this script, its only input: an unchanged script reuses it,
# a changed one builds a new one (and removes the old). Prints the tarball's path. Needs root (debootstrap, chroot).
# scripts/boot-image.sh installs bootlace's .deb onto it and makes the disk images that boot.
# BOOTLACE_BOOT_MIRROR picks a Debian mirror other than debootstrap's default.
set -euo pipefail
cd "$(dirname "$0")/.."

key=$(sha256sum scripts/boot-base.sh | cut -c1-16)
cache=.cache/boot
out="$cache/base-$key.tar.zst"
if [[ -s $out ]]; then
	echo "$out"
	exit 0
fi
if ((EUID != 0)); then
	echo "boot-base: building the guest's root file system needs root (debootstrap, chroot)" >&2
	exit 1
fi
for tool in debootstrap zstd; do
	command -v "$tool" >/dev/null || {
		echo "boot-base: $tool not found (apt-get install $tool, or run scripts/ci-deps.sh)" >&2
		exit 1
	}
done

mkdir -p "$cache"
work=$(mktemp -d "$cache/tmp-base.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
started=$SECONDS

# systemd as PID 1 with udev, dbus and networkd; the kernel (its postinst makes the initramfs); Node 18 for bootlace.
packages=systemd,systemd-sysv,udev,dbus,iproute2,linux-image-amd64,nodejs
mirror=()
[[ -n ${BOOTLACE_BOOT_MIRROR:-} ]] && mirror=("$BOOTLACE_BOOT_MIRROR")
echo "boot-base: debootstrap bookworm (minbase + $packages)" >&2
if ! debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "${mirror[@]}" >"$work/debootstrap.log" 2>&1; then
	tail -n 30 "$work/debootstrap.log" >&2
	echo "boot-base: debootstrap failed (log above)" >&2
	exit 1
fi

# Kernel modules: only the closure of what the guest uses (the virtio disk, NICs, RNG and console, ext4, the 9p
# share); everything else goes, and the initramfs is made again from what is left (smaller, faster under TCG).
kver=$(basename "$(find "$rootfs/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
wanted=(virtio_pci virtio_blk virtio_net virtio_rng virtio_console ext4 9p 9pnet_virtio autofs4)
keep="$work/modules.keep"
for module in "${wanted[@]}"; do
	chroot "$rootfs" modprobe --show-depends --set-version "$kver" "$module"
done | awk '$1 == "insmod" { print $2 }' | sort -u >"$keep"
[[ -s $keep ]] || {
	echo "boot-base: modprobe found none of ${wanted[*]}" >&2
	exit 1
}
# Named as modprobe names them (/lib/modules/...; /lib is /usr/lib), so the two lists compare.
find "$rootfs/lib/modules/$kver/kernel" -name '*.ko*' | sed "s|^$rootfs||" | sort |
	comm -23 - "$keep" | sed "s|^|$rootfs|" | xargs rm -f
find "$rootfs/lib/modules/$kver/kernel" -type d -empty -delete
chroot "$rootfs" depmod "$kver"
printf 'MODULES=list\n' >"$rootfs/etc/initramfs-tools/conf.d/boot-test.conf"
printf '%s\n' virtio_pci virtio_blk ext4 >>"$rootfs/etc/initramfs-tools/modules"
chroot "$rootfs" update-initramfs -u -k "$kver" >"$work/initramfs.log" 2>&1 || {
	cat "$work/initramfs.log" >&2
	exit 1
}
chroot "$rootfs" lsinitramfs "/boot/initrd.img-$kver" >"$work/initramfs.list"
grep -q '/virtio_blk\.ko' "$work/initramfs.list" || {
	echo "boot-base: the initramfs has no virtio_blk: the guest could not find its disk" >&2
	exit 1
}
rm -f "$rootfs"/boot/*.old-dkms "$rootfs"/initrd.img.old "$rootfs"/vmlinuz.old

# What a booted test guest never reads: package caches and lists, docs, man pages, locales.
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/debconf/*-old \
	"$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +

echo "boot-base: $(du -sh "$rootfs" | cut -f1) root file system, node $(chroot "$rootfs" node --version)," \
	"kernel $kver, in $((SECONDS - started)) s" >&2
tar --numeric-owner --xattrs -C "$rootfs" -cf - . | zstd -q -T0 -3 -o "$work/base.tar.zst"
rm -f "$cache"/base-*.tar.zst
mv "$work/base.tar.zst" "$out"
echo "$out"
