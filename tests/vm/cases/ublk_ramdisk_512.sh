#!/bin/sh
# spd-ramdisk as /dev/ublkb0 with 512-byte blocks: the kernel's geometry,
# ext4 made, filled, checked and compared, fio random and sequential
# writes verified, a clean stop that removes the disk. The RAM disk lends
# its memory, so the kernel's user copy moves the data.
. "$(dirname "$0")/../ublk.sh"
need mkfs.ext4 e2fsck fio

ublk_serve "$RAMDISK" --size 128M
ublk_expect_block 512
expect_eq "$(cat /sys/block/ublkb0/size)" 262144 "sectors of /dev/ublkb0"
expect_eq "$(cat /sys/block/ublkb0/queue/write_cache)" "write back" "write cache"
grep -q "serving /dev/ublkb0, data copied straight to and from the device's memory" \
    "$WORK/server.log" || { cat "$WORK/server.log"; fail "no user copy for spd-ramdisk"; }
ext4_roundtrip "$UBLK_DEV"
fio_verify "$UBLK_DEV"
fio_seq_verify "$UBLK_DEV"
ublk_stop
