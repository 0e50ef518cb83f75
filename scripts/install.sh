#!/usr/bin/env bash
# Installs bootlace on a host without dpkg (Amazon Linux, RHEL family, or any image build), from a checkout or a
# release tree with the same layout (dist/, systemd/, initd/, packaging/, docs/). The .deb is built by this script
# too (scripts/package.sh), so both lay out the same files.
#
#   scripts/install.sh [--root DIR] [--single-binary] [--no-enable]
#
#   --root DIR       install under DIR instead of / (an image being built, a test)
#   --single-binary  install dist/bootlace-linux-x64 (npm run sea) as /usr/bin/bootlace: no Node needed on the host;
#                    default: dist/bootlace.js under /usr/lib/bootlace, which needs Node >= 18 on PATH
#   --no-enable      lay out the files only; otherwise bootlace.service (systemd), or the init script (chkconfig,
#                    update-rc.d), is enabled for the next boot. Nothing is started.
#
# An existing /etc/bootlace/bootlace.yaml is kept, as dpkg keeps a changed conffile.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
root=/
single=false
enable=true
while (($#)); do
	case $1 in
	--root)
		root=${2:?--root needs a folder}
		shift 2
		;;
	--single-binary)
		single=true
		shift
		;;
	--no-enable)
		enable=false
		shift
		;;
	*)
		echo "install: unknown option $1 (see the top of $0)" >&2
		exit 2
		;;
	esac
done
root=$(realpath -m "$root")
dest() { echo "${root%/}$1"; }

umask 022
if $single; then
	[[ -f $src/dist/bootlace-linux-x64 ]] || {
		echo "install: $src/dist/bootlace-linux-x64 is missing: run npm run sea" >&2
		exit 1
	}
	install -D -m 0755 "$src/dist/bootlace-linux-x64" "$(dest /usr/bin/bootlace)"
else
	[[ -f $src/dist/bootlace.js ]] || {
		echo "install: $src/dist/bootlace.js is missing: run npm run build" >&2
		exit 1
	}
	if [[ $root == / ]]; then
		major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
		((major >= 18)) || echo "install: warning: bootlace.js needs Node >= 18 on PATH (found: ${major/#0/none}); or use --single-binary" >&2
	fi
	install -D -m 0755 "$src/dist/bootlace.js" "$(dest /usr/lib/bootlace/bootlace.js)"
	# A relative link: the bundle's shebang finds node on PATH, and the tree also works under another root.
	mkdir -p "$(dest /usr/bin)"
	ln -sfn ../lib/bootlace/bootlace.js "$(dest /usr/bin/bootlace)"
fi
install -D -m 0644 -t "$(dest /usr/lib/systemd/system)" "$src/systemd/bootlace.service" "$src/systemd/bootlace-watch.service"
install -D -m 0755 "$src/initd/bootlace" "$(dest /etc/init.d/bootlace)"
if [[ ! -e $(dest /etc/bootlace/bootlace.yaml) ]]; then
	install -D -m 0644 "$src/packaging/bootlace.yaml" "$(dest /etc/bootlace/bootlace.yaml)"
fi
mkdir -p "$(dest /etc/bootlace/conf.d)" "$(dest /var/lib/bootlace)"
doc=$(dest /usr/share/doc/bootlace)
install -D -m 0644 -t "$doc" "$src/README.md" "$src/packaging/copyright"
install -D -m 0644 -t "$doc/docs" "$src"/docs/*.md
install -D -m 0644 -t "$doc/examples" "$src/initd/rc.local.snippet"
# Debian's names (a native package: changelog.gz); gzip -n keeps no name or time, so the same tree gives the same bytes.
gzip -9n <"$src/packaging/changelog" >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
# bootlace(8), written from the installed command's own --help by scripts/man-page.mjs, which needs Node.
man8=$(dest /usr/share/man/man8)
if command -v node >/dev/null; then
	if $single; then
		help=("$src/dist/bootlace-linux-x64")
	else
		help=(node "$src/dist/bootlace.js")
	fi
	mkdir -p "$man8"
	node "$src/scripts/man-page.mjs" "${help[@]}" | gzip -9n >"$man8/bootlace.8.gz"
	chmod 0644 "$man8/bootlace.8.gz"
else
	echo "install: no node here to write the man page from bootlace --help: bootlace(8) left out" >&2
fi

$enable || exit 0
if command -v systemctl >/dev/null && { [[ $root != / ]] || [[ -d /run/systemd/system ]]; }; then
	if [[ $root == / ]]; then
		systemctl --quiet enable bootlace.service
		systemctl daemon-reload
	else
		# What `systemctl --root enable` does for this unit, by hand: systemctl would also sync the init script's links
		# by chrooting into DIR to run update-rc.d, which an image being built need not have (systemd ignores the script).
		wanted_by=$(sed -n 's/^WantedBy=//p' "$src/systemd/bootlace.service")
		mkdir -p "$(dest "/etc/systemd/system/$wanted_by.wants")"
		ln -sfn /usr/lib/systemd/system/bootlace.service "$(dest "/etc/systemd/system/$wanted_by.wants/bootlace.service")"
	fi
	echo "install: bootlace.service enabled for the next boot (not started)"
elif [[ $root == / ]] && command -v chkconfig >/dev/null; then
	chkconfig --add bootlace
	echo "install: /etc/init.d/bootlace enabled with chkconfig (not started)"
elif command -v update-rc.d >/dev/null; then
	DPKG_ROOT=${root%/} update-rc.d bootlace defaults
	echo "install: /etc/init.d/bootlace enabled with update-rc.d (not started)"
else
	echo "install: no systemd, chkconfig or update-rc.d here: add $doc/examples/rc.local.snippet to /etc/rc.local" >&2
fi
