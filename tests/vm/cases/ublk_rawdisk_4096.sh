#!/bin/sh
# spd-rawdisk as /dev/ublkb0 with 4096-byte blocks: ext4 round trip,
# discard unmaps the image's blocks, fio random verify;
# a read-only server gives a read-only disk.
. "$(dirname "$0")/../ublk.sh"
need mkfs.ext4 e2fsck fio blkdiscard

ublk_serve "$RAWDISK" --file "$WORK/disk.img" --size 128M --block-length 4096
ublk_expect_block 4096
ext4_roundtrip "$UBLK_DEV"
ublk_discard_check "$WORK/disk.img"
fio_verify "$UBLK_DEV"
ublk_stop

ublk_serve "$RAWDISK" --file "$WORK/disk.img" --block-length 4096 --read-only
expect_eq "$(cat /sys/block/ublkb0/ro)" 1 "read-only flag of /dev/ublkb0"
ublk_stop
ok "--read-only: /dev/ublkb0 is read-only"
