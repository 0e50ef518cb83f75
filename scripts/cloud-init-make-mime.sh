#!/usr/bin/env bash
# Runs Debian's own `cloud-init devel make-mime` without installing cloud-init (scripts/cloud-init-unpack.sh unpacks
# Debian 12's package into .cache/cloud-init), with Debian's python3. Arguments go to make-mime:
#   scripts/cloud-init-make-mime.sh -a cloud.yaml:cloud-config -a boot.sh:x-shellscript > user-data
set -euo pipefail
site=$(bash "$(dirname "$0")/cloud-init-unpack.sh" bookworm)
# `cloud-init` itself is this module's console entry point.
PYTHONPATH="$site" exec /usr/bin/python3 -m cloudinit.cmd.main devel make-mime "$@"
