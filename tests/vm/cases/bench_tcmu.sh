#!/bin/sh
# Not a test: part of bench/vm.sh (run.sh runs it only when named). fio on
# three disks of the same size: the tcm_loop disk of spd-ramdisk
# --tcmu-loop (LIO hands every command to Spd's engine through TCMU), the
# same program's disk through ublk, and a tcm_loop disk of LIO's own
# fileio backstore on a tmpfs file; the ratios Spd-TCMU/ublk and
# Spd-TCMU/LIO-fileio.
. "$(dirname "$0")/../tcmu.sh"
. "$(dirname "$0")/../bench.sh"
[ -e /dev/ublk-control ] || skip "no ublk_drv in this guest"
[ -d /sys/module/target_core_file ] ||
    skip "no LIO fileio in this guest: bench/vm.sh tcmu loads its module"
at_exit tcmu_leftovers

tcmu_serve "$RAMDISK" --size ${BENCH_SIZE_MB}M --tcmu-loop=bench
TCMU=$TCMU_DEV
tcmu_pid=$SERVER_PID
start_device "$RAMDISK" --size ${BENCH_SIZE_MB}M --ublk --queues 2
UBLK=$(sed -n 's/.*serving \(\/dev\/ublkb[0-9]*\).*/\1/p' "$WORK/server.log")
[ -b "$UBLK" ] || { cat "$WORK/server.log"; fail "no ublk disk"; }

# LIO's fileio backstore on tmpfs behind a tcm_loop target of its own.
truncate -s ${BENCH_SIZE_MB}M /dev/shm/fileio.img
hba=$C/core/fileio_1 wwn=$C/loopback/naa.5001405aaaaaaaaa
at_exit "rm -f $wwn/tpgt_1/lun/lun_0/f; rmdir $wwn/tpgt_1/lun/lun_0 $wwn/tpgt_1 $wwn $hba/bench $hba 2>/dev/null; rm -f /dev/shm/fileio.img"
before=$(ls /sys/block)
{ mkdir -p $hba/bench &&
  echo "fd_dev_name=/dev/shm/fileio.img,fd_dev_size=$((BENCH_SIZE_MB << 20))" >$hba/bench/control &&
  echo 1 >$hba/bench/enable &&
  mkdir -p $wwn/tpgt_1 &&
  echo naa.5001405bbbbbbbbb >$wwn/tpgt_1/nexus &&
  mkdir -p $wwn/tpgt_1/lun/lun_0 &&
  ln -s $hba/bench $wwn/tpgt_1/lun/lun_0/f; } || fail "LIO fileio through configfs"
new_disk() { for b in $(ls /sys/block); do echo "$before" | grep -qx "$b" || { echo "$b"; return 0; }; done; return 1; }
wait_until 10 new_disk >/dev/null || fail "no disk for LIO's fileio backstore"
LIO=/dev/$(new_disk)

bench_prepare "$TCMU" "$UBLK" "$LIO"
bench_compare "tcm_loop on Spd (TCMU) against Spd through ublk and tcm_loop on LIO fileio (tmpfs)" \
    Spd-TCMU="$TCMU" ublk="$UBLK" LIO-file="$LIO"
