#!/bin/sh
# The kernel's iSCSI initiator (open-iscsi, iscsi_tcp) on spd-rawdisk's
# iSCSI export: a SCSI disk whose INQUIRY, block limits, capacity and UNMAP
# work through sg3-utils; ext4 round trip and fio verify; logout.
. "$(dirname "$0")/../lib.sh"
need iscsiadm iscsid sg_inq sg_vpd sg_readcap sg_unmap mkfs.ext4 e2fsck fio
PORTAL=127.0.0.1:3260

# open-iscsi writes its state under /etc/iscsi, /var/lib/iscsi and /run,
# read-only here: tmpfs over them, /etc/iscsi seeded from the host's.
mkdir -p "$WORK/etc-iscsi"
cp -a /etc/iscsi/. "$WORK/etc-iscsi/"
mount -t tmpfs tmpfs /etc/iscsi
at_exit "umount /etc/iscsi"
cp -a "$WORK/etc-iscsi/." /etc/iscsi/
echo "InitiatorName=iqn.2026-11.org.spd:vm-initiator" >/etc/iscsi/initiatorname.iscsi
mount -t tmpfs tmpfs /var/lib
at_exit "umount /var/lib"
mkdir -p /var/lib/iscsi /run/lock/iscsi
# Its own session: iscsid signals its process group as it stops.
setsid iscsid -f >"$WORK/iscsid.log" 2>&1 &
PIDS="$! $PIDS"

start_device "$RAWDISK" --file "$WORK/disk.img" --size 128M --iscsi="$PORTAL"
wait_until 10 iscsiadm -m discovery -t sendtargets -p "$PORTAL" >"$WORK/targets" ||
    { cat "$WORK/iscsid.log"; fail "discovery on $PORTAL"; }
iqn=$(awk '{print $2; exit}' "$WORK/targets")
[ -n "$iqn" ] || fail "no target in the discovery reply"
iscsiadm -m node -T "$iqn" -p "$PORTAL" --login || fail "login to $iqn"
at_exit "iscsiadm -m node -T '$iqn' -p '$PORTAL' --logout >/dev/null 2>&1"
disk_of_session() {
    ls /sys/class/iscsi_session/session*/device/target*/*:*:*:*/block/ 2>/dev/null | head -1 | grep .
}
wait_until 30 disk_of_session || fail "no block device for the iSCSI session"
dev=/dev/$(disk_of_session)
wait_until 10 test -b "$dev" || fail "no $dev"
ok "logged in to $iqn: $dev"

sg_inq "$dev" >"$WORK/inq" || fail "sg_inq $dev"
grep -q 'Product identification: Spd disk' "$WORK/inq" || { cat "$WORK/inq"; fail "sg_inq: not Spd's disk"; }
sg_vpd -p bl "$dev" >"$WORK/bl" || fail "sg_vpd -p bl $dev"
grep -q 'Maximum unmap LBA count' "$WORK/bl" || { cat "$WORK/bl"; fail "sg_vpd -p bl: no unmap limits"; }
sg_readcap -l "$dev" >"$WORK/cap" || fail "sg_readcap -l $dev"
grep -q 'Logical block length=512 bytes' "$WORK/cap" || { cat "$WORK/cap"; fail "sg_readcap: block length"; }
grep -q 'Number of logical blocks=262144' "$WORK/cap" || { cat "$WORK/cap"; fail "sg_readcap: block count"; }
ok "sg_inq, sg_vpd -p bl, sg_readcap -l: Spd disk, 262144 blocks of 512 bytes, unmap limits"

# UNMAP of blocks just written: reads as zeros when the disk says so (LBPRZ).
head -c 65536 /dev/urandom >"$WORK/pattern"
dd if="$WORK/pattern" of="$dev" bs=64k count=1 oflag=direct 2>/dev/null || fail "write before unmap"
sg_unmap --force --lba=0 --num=128 "$dev" || fail "sg_unmap $dev"
if grep -q 'LBPRZ=1' "$WORK/cap"; then
    dd if="$dev" bs=64k count=1 iflag=direct 2>/dev/null | cmp -s - /dev/zero -n 65536 ||
        fail "blocks read after UNMAP are not zeros (LBPRZ=1)"
fi
ok "sg_unmap of 128 blocks"

ext4_roundtrip "$dev"
fio_verify "$dev"
iscsiadm -m node -T "$iqn" -p "$PORTAL" --logout || fail "logout"
stop_device "$SERVER_PID"
ok "logged out, server stopped cleanly"
