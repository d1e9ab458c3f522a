#!/bin/sh
# The kernel's iSCSI initiator (open-iscsi, iscsi_tcp) on spd-rawdisk's
# iSCSI export: a SCSI disk whose INQUIRY, block limits, capacity and UNMAP
# work through sg3-utils; ext4 round trip and fio verify; logout.
# kernel log allows: Power-on or device reset occurred
. "$(dirname "$0")/../lib.sh"
need sg_inq sg_vpd sg_readcap sg_unmap mkfs.ext4 e2fsck fio
iscsi_attach --file "$WORK/disk.img" --size 128M
dev=$ISCSI_DEV

sg_disk_check "$dev"

# UNMAP of blocks just written: reads as zeros when the disk says so (LBPRZ).
head -c 65536 /dev/urandom >"$WORK/pattern"
dd if="$WORK/pattern" of="$dev" bs=64k count=1 oflag=direct 2>/dev/null || fail "write before unmap"
sg_unmap --force --lba=0 --num=128 "$dev" || fail "sg_unmap $dev"
if grep -qi 'lbprz=1' "$WORK/cap"; then
    dd if="$dev" bs=64k count=1 iflag=direct 2>/dev/null | cmp -s -n 65536 - /dev/zero ||
        fail "blocks read after UNMAP are not zeros (LBPRZ=1)"
    ok "sg_unmap of 128 blocks: read back as zeros (LBPRZ=1)"
else
    ok "sg_unmap of 128 blocks (LBPRZ=0: contents not checked)"
fi

ext4_roundtrip "$dev"
fio_verify "$dev"
iscsi_detach
