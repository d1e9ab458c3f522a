#!/bin/sh
# The kernel's iSCSI initiator on a spd-rawdisk of 4096-byte blocks: the
# kernel takes the block size from READ CAPACITY; ext4 round trip and fio
# verify.
# kernel log allows: Power-on or device reset occurred
. "$(dirname "$0")/../lib.sh"
need sg_readcap mkfs.ext4 e2fsck fio

iscsi_attach --file "$WORK/disk.img" --size 128M --block-length 4096
sg_readcap -l "$ISCSI_DEV" >"$WORK/cap" || fail "sg_readcap -l $ISCSI_DEV"
grep -q 'Logical block length=4096 bytes' "$WORK/cap" || { cat "$WORK/cap"; fail "sg_readcap: block length"; }
expect_eq "$(cat /sys/block/${ISCSI_DEV#/dev/}/queue/logical_block_size)" 4096 "kernel's logical block size"
ext4_roundtrip "$ISCSI_DEV"
fio_verify "$ISCSI_DEV"
iscsi_detach
