#!/bin/sh
# spd-ramdisk --tcmu-loop: the kernel's own target (LIO) hands every
# command of a local SCSI disk to Spd's engine through TCMU's ring. The
# disk answers sg3-utils (INQUIRY, block limits VPD, READ CAPACITY(16),
# UNMAP, COMPARE AND WRITE matching and not), carries ext4 and fio's verify; a clean stop removes the disk,
# the tcm_loop target and the backstore.
. "$(dirname "$0")/../tcmu.sh"
need sg_inq sg_vpd sg_readcap sg_unmap sg_compare_and_write mkfs.ext4 e2fsck fio

targets=$(ls $C/loopback 2>/dev/null | grep naa. || true)
tcmu_serve "$RAMDISK" --size 128M --tcmu-loop=vmdisk
dev=$TCMU_DEV
[ -d $C/core/user_0/vmdisk ] || fail "no backstore user_0/vmdisk"

sg_disk_check "$dev"
sg_caw_check "$dev"

head -c 65536 /dev/urandom >"$WORK/pattern"
dd if="$WORK/pattern" of="$dev" bs=64k count=1 oflag=direct 2>/dev/null || fail "write before unmap"
dd if="$dev" bs=64k count=1 iflag=direct 2>/dev/null | cmp -s - "$WORK/pattern" ||
    fail "64 KiB written through tcm_loop do not read back"
sg_unmap --force --lba=0 --num=128 "$dev" || fail "sg_unmap $dev"
dd if="$dev" bs=64k count=1 iflag=direct 2>/dev/null | cmp -s -n 65536 - /dev/zero ||
    fail "blocks read after UNMAP are not zeros"
ok "64 KiB written and read back; sg_unmap of 128 blocks: read back as zeros"

ext4_roundtrip "$dev"
fio_verify "$dev"
fio_verify "$dev" 1M 64M

stop_device "$SERVER_PID"
[ ! -e "$dev" ] || fail "$dev stays after the server stopped"
[ ! -e $C/core/user_0/vmdisk ] || fail "the backstore stays after the server stopped"
[ "$(ls $C/loopback | grep naa.)" = "$targets" ] || fail "a tcm_loop target stays: $(ls $C/loopback)"
ok "clean stop: disk, tcm_loop target and backstore removed"
