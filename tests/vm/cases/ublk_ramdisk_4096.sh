#!/bin/sh
# spd-ramdisk as /dev/ublkb0 with 4096-byte blocks, two queues: ext4 and
# fio verify on a disk whose every request is 4096-byte aligned.
. "$(dirname "$0")/../ublk.sh"
need mkfs.ext4 e2fsck fio

ublk_serve "$RAMDISK" --size 128M --block-length 4096 --queues 2 --queue-depth 32
ublk_expect_block 4096
ext4_roundtrip "$UBLK_DEV"
fio_verify "$UBLK_DEV"
ublk_stop
