#!/bin/sh
# spd-rawdisk as /dev/ublkb0 with 512-byte blocks over a sparse image on
# tmpfs: ext4 round trip, discard unmaps the image's blocks. Its reads go
# through the tags' buffers (no user copy: the file's data is not in
# memory to lend).
. "$(dirname "$0")/../ublk.sh"
need mkfs.ext4 e2fsck fio blkdiscard

ublk_serve "$RAWDISK" --file "$WORK/disk.img" --size 128M
ublk_expect_block 512
grep -q "serving /dev/ublkb0$" "$WORK/server.log" ||
    { cat "$WORK/server.log"; fail "spd-rawdisk's serving line"; }
ext4_roundtrip "$UBLK_DEV"
ublk_discard_check "$WORK/disk.img"

ublk_stop
