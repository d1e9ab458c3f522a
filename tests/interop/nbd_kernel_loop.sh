#!/bin/sh
# The NBD export as a kernel block device on this machine: nbdfuse makes it
# a file, losetup a /dev/loopN; ext4 is made, filled, checked and compared.
. "$(dirname "$0")/../lib.sh"
need nbdfuse fusermount3 losetup mkfs.ext4 e2fsck mount umount sha256sum
need_root "losetup and mount"
[ -e /dev/fuse ] || skip "no /dev/fuse"

URI="nbd+unix:///?socket=$WORK/sock"
start_device "$RAMDISK" --size 256M --nbd "$URI"
mkdir -p "$WORK/fuse" "$WORK/mnt"
nbdfuse "$WORK/fuse/disk" "$URI" &
FUSE_PID=$!
PIDS="$FUSE_PID $PIDS"
at_exit "fusermount3 -u '$WORK/fuse' 2>/dev/null"
wait_until 30 test -s "$WORK/fuse/disk" || fail "nbdfuse did not come up"

loop=$(losetup -f --show "$WORK/fuse/disk") || skip "losetup failed (no loop devices?)"
at_exit "losetup -d $loop 2>/dev/null"
mkfs.ext4 -q "$loop"
mount "$loop" "$WORK/mnt"
at_exit "umount '$WORK/mnt' 2>/dev/null"
i=0
while [ $i -lt 100 ]; do
    head -c $(( (i * 7919) % 300000 + 1 )) /dev/urandom >"$WORK/mnt/file$i"
    i=$((i + 1))
done
(cd "$WORK/mnt" && sha256sum file*) >"$WORK/sums"
umount "$WORK/mnt"
e2fsck -fn "$loop" >/dev/null 2>&1 || fail "e2fsck after writing"
mount "$loop" "$WORK/mnt"
(cd "$WORK/mnt" && sha256sum -c --quiet "$WORK/sums") || fail "checksums after remount"
umount "$WORK/mnt"
losetup -d "$loop"
ok "ext4 on /dev/loop over nbdfuse over Spd NBD: 100 files intact, fsck clean"
