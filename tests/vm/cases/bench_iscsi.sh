#!/bin/sh
# Not a test: part of bench/vm.sh (run.sh runs it only when named). fio on
# the disks of open-iscsi sessions with three targets on the guest's
# loopback: spd-ramdisk, tgt (tgtd, a file on tmpfs) and the kernel's own
# LIO (an rd_mcp RAM disk, set up through configfs; bench/vm.sh puts its
# modules in the guest), each on the other vCPU than fio (bench_apart);
# the ratios Spd/tgt and Spd/LIO.
# tgt's LUN reports a power-on reset when first seen (a unit attention):
# kernel log allows: Power-on or device reset occurred
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../bench.sh"
need tgtd tgtadm taskset
[ -d /sys/module/iscsi_target_mod ] ||
    skip "no LIO in this guest: bench/vm.sh iscsi loads its modules"
iscsi_setup   # tmpfs on /var/lib for tgtd too
bench_apart

# The disk of the session with target $1.
disk_of() {
    for s in /sys/class/iscsi_session/session*; do
        [ "$(cat "$s/targetname" 2>/dev/null)" = "$1" ] || continue
        ls "$s"/device/target*/*:*:*:*/block/ 2>/dev/null | head -1 | grep . && return
    done
    return 1
}

# Log in to the one target on 127.0.0.1:$1; sets DISK to its disk.
login() {
    ISCSI_PORTAL=127.0.0.1:$1
    iscsi_discover
    iscsi_login || { cat "$WORK/login"; fail "login to $ISCSI_IQN"; }
    wait_until 30 disk_of "$ISCSI_IQN" >/dev/null || fail "no disk for $ISCSI_IQN"
    wait_until 10 test -b "/dev/$(disk_of "$ISCSI_IQN")" || fail "no disk node for $ISCSI_IQN"
    DISK=/dev/$(disk_of "$ISCSI_IQN")
}

port=$(free_port)
start_device $BENCH_SERVER "$RAMDISK" --size ${BENCH_SIZE_MB}M --iscsi="127.0.0.1:$port"
login "$port"
SPD=$DISK

# tgt: LUN 1 on a tmpfs file (its default rdwr backing store). tgtd
# ignores SIGTERM while it has targets; it goes after the logout.
port=$(free_port)
mkdir -p /var/lib/tgtd /run/tgtd
truncate -s ${BENCH_SIZE_MB}M /dev/shm/tgt.img
at_exit "rm -f /dev/shm/tgt.img"
$BENCH_SERVER tgtd -f --iscsi "portal=127.0.0.1:$port" >"$WORK/tgtd.log" 2>&1 &
at_exit "kill -9 $!"
wait_until 30 tgtadm --lld iscsi --op new --mode target --tid 1 \
    -T iqn.2026-11.org.spd:bench-tgt || { cat "$WORK/tgtd.log"; fail "tgtd did not start"; }
tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b /dev/shm/tgt.img &&
    tgtadm --lld iscsi --op bind --mode target --tid 1 -I ALL || fail "tgtadm"
login "$port"
TGT=$DISK

# LIO: an rd_mcp RAM disk as LUN 0, any initiator, no authentication,
# set up through the kernel's own configfs interface (what targetcli
# writes), nothing saved.
port=$(free_port)
iqn=iqn.2026-11.org.spd:bench-lio
C=/sys/kernel/config/target
[ -d $C ] || mount -t configfs configfs /sys/kernel/config || fail "configfs"
hba=$C/core/rd_mcp_0 tpg=$C/iscsi/$iqn/tpgt_1
at_exit "rmdir $tpg/np/127.0.0.1:$port; rm -f $tpg/lun/lun_0/bench; rmdir $tpg/lun/lun_0 $tpg $C/iscsi/$iqn $hba/bench $hba 2>/dev/null"
{ mkdir -p $hba/bench &&
  echo "rd_pages=$((BENCH_SIZE_MB * 256))" >$hba/bench/control &&
  echo 1 >$hba/bench/enable &&
  mkdir -p $tpg/lun/lun_0 &&
  echo 1 >$C/iscsi/cpus_allowed_list &&   # its connection threads' vCPUs
  ln -s $hba/bench $tpg/lun/lun_0/bench &&
  mkdir $tpg/np/127.0.0.1:$port &&
  echo 0 >$tpg/attrib/authentication &&
  echo 1 >$tpg/attrib/generate_node_acls &&
  echo 0 >$tpg/attrib/demo_mode_write_protect &&
  echo 1 >$tpg/attrib/cache_dynamic_acls &&
  echo 1 >$tpg/enable; } || fail "LIO configuration through configfs"
login "$port"
LIO=$DISK

bench_prepare "$SPD" "$TGT" "$LIO"
bench_compare "iSCSI: open-iscsi on spd-ramdisk against tgt and LIO" \
    Spd="$SPD" tgt="$TGT" LIO="$LIO"
