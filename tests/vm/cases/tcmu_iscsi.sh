#!/bin/sh
# spd-ramdisk --tcmu NAME: the backstore alone, exported by LIO's own
# kernel iSCSI target (set up through configfs, as targetcli would) to
# open-iscsi in the same guest. The disk is Spd's engine behind LIO:
# sg_inq, sg_readcap, ext4 round trip, fio verify; after the logout and
# the fabric's removal a clean stop removes the backstore.
. "$(dirname "$0")/../tcmu.sh"
need sg_inq sg_readcap mkfs.ext4 e2fsck fio
[ -d /sys/module/iscsi_target_mod ] || skip "no iscsi_target_mod in this guest"

start_device "$RAMDISK" --size 128M --tcmu vmiscsi
grep -q "serving the TCMU backstore $C/core/user_0/vmiscsi" "$WORK/server.log" ||
    { cat "$WORK/server.log"; fail "no serving line for the backstore"; }

iscsi_setup
port=$(free_port)
iqn=iqn.2026-11.org.spd:tcmu-lio
tpg=$C/iscsi/$iqn/tpgt_1
at_exit "rmdir $tpg/np/127.0.0.1:$port 2>/dev/null; rm -f $tpg/lun/lun_0/spd; rmdir $tpg/lun/lun_0 $tpg $C/iscsi/$iqn 2>/dev/null"
{ mkdir -p $tpg/lun/lun_0 &&
  ln -s $C/core/user_0/vmiscsi $tpg/lun/lun_0/spd &&
  mkdir $tpg/np/127.0.0.1:$port &&
  echo 0 >$tpg/attrib/authentication &&
  echo 1 >$tpg/attrib/generate_node_acls &&
  echo 0 >$tpg/attrib/demo_mode_write_protect &&
  echo 1 >$tpg/attrib/cache_dynamic_acls &&
  echo 1 >$tpg/enable; } || fail "LIO iSCSI target through configfs"
ISCSI_PORTAL=127.0.0.1:$port
iscsi_discover
iscsi_login || { cat "$WORK/login"; fail "login to $ISCSI_IQN"; }
iscsi_wait_disk
dev=$ISCSI_DEV

sg_inq "$dev" >"$WORK/inq" || fail "sg_inq $dev"
grep -q 'Product identification: Spd disk' "$WORK/inq" || { cat "$WORK/inq"; fail "sg_inq: not Spd's disk"; }
sg_readcap -l "$dev" >"$WORK/cap" || fail "sg_readcap -l $dev"
grep -q 'Number of logical blocks=262144' "$WORK/cap" || { cat "$WORK/cap"; fail "sg_readcap: block count"; }
ok "LIO's iSCSI target on the TCMU backstore: $dev is Spd's disk, 262144 blocks"
ext4_roundtrip "$dev"
fio_verify "$dev"

iscsiadm -m node -T "$ISCSI_IQN" -p "$ISCSI_PORTAL" --logout >/dev/null || fail "logout"
rmdir $tpg/np/127.0.0.1:$port && rm $tpg/lun/lun_0/spd && rmdir $tpg/lun/lun_0 $tpg $C/iscsi/$iqn ||
    fail "removing the LIO iSCSI target"
stop_device "$SERVER_PID"
[ ! -e $C/core/user_0/vmiscsi ] || fail "the backstore stays after the server stopped"
ok "logged out, LIO target removed, clean stop removed the backstore"
