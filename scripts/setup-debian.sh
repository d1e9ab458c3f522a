#!/bin/sh
# Install the Debian 12 packages Spd's build and tests need. Idempotent:
# installs only what is missing, and asks apt for fresh lists only then.
set -eu

PACKAGES="
  gcc libc6-dev pkg-config meson ninja-build
  groff-base util-linux fdisk gdisk e2fsprogs coreutils
  libgnutls28-dev gnutls-bin libiscsi-bin tgt qemu-utils qemu-block-extra
  fuse3 libfuse3-dev mount fio iproute2 attr python3
  liburing-dev libnbd-dev libiscsi-dev
  libnbd-bin python3-libnbd nbdkit
  python3-dev python3-pytest nbdkit-plugin-python
  qemu-system-x86 busybox-static cpio xz-utils gzip dpkg apt
  open-iscsi nbd-client sg3-utils
  ceph-mon ceph-osd ceph-common librbd-dev
"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "setup: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
