#!/bin/sh
# The kernel's block devices side by side, in one boot of the test guest
# (tests/vm; the guest halves are tests/vm/cases/bench_*.sh): fio 4 KiB
# random reads and writes at queue depth 1 and 32 and 1 MiB sequential
# reads and writes at depth 8, on disks of 128 MiB in RAM, alternating
# between the disks of a group, the median of three runs of 4 s each:
#
#   ublk   /dev/ublkb0 served by spd-ramdisk, and the kernel's loop device
#          over a tmpfs file: ublk/loop
#   nbd    the kernel's NBD client (nbd-client, one connection) on
#          spd-ramdisk and on nbdkit's memory plugin: Spd/nbdkit
#   iscsi  open-iscsi logged in to spd-ramdisk's iSCSI target, to tgt (tgtd,
#          a tmpfs file) and to the kernel's own LIO target (an rd_mcp RAM
#          disk set up through configfs): Spd/tgt and Spd/LIO
#   tcmu   the tcm_loop disk of spd-ramdisk --tcmu-loop (LIO hands each
#          command to Spd's engine), the same through ublk, and a tcm_loop
#          disk on LIO's fileio backstore (a tmpfs file)
#
# For the network targets (nbd, iscsi) fio runs on vCPU 0 and every
# target's server on vCPU 1, LIO's connection threads included: they serve
# other machines in real use, and sharing fio's vCPU would cost each
# request two address-space switches, which TCG pays with a flush of its
# whole software TLB and a kernel target never pays (tests/vm/bench.sh).
#
# It prints IOPS or MB/s and the ratios. The guest runs under software
# emulation (TCG): its figures are comparable only within one boot, never
# with the host's or another boot's. Its CPU model lacks ERMS, so that the
# kernel's copies between user and kernel memory do not run TCG's slow
# byte-wise rep movsb, a cost only user-space servers would pay
# (tests/vm/README.md).
#
# Usage (as root): bench/vm.sh [ublk] [nbd] [iscsi] [tcmu]   (all by default)
# BUILD names the build directory (default build). Needs what tests/vm
# needs (qemu-system-x86, busybox-static, the 6.12 kernel package, fio,
# nbd-client, open-iscsi, nbdkit, tgt: scripts/setup-debian.sh installs
# them). LIO's modules (target_core_mod,
# iscsi_target_mod) go into an initramfs of their own for this run; the
# tests' one stays as it is. About 15 minutes on two shared cores.
set -eu
cd "$(dirname "$0")/.."
PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
B=${BUILD:-build}
cases=""
for g in ${*:-ublk nbd iscsi tcmu}; do
    case $g in
    ublk|nbd|iscsi|tcmu) cases="$cases bench_$g" ;;
    *) echo "usage: bench/vm.sh [ublk] [nbd] [iscsi] [tcmu]" >&2; exit 2 ;;
    esac
done
case $cases in
*bench_iscsi*)
    export SPD_VM_EXTRA_MODULES="target_core_mod iscsi_target_mod" ;;
esac
case $cases in
*bench_tcmu*)   # LIO's fileio backstore, to compare with
    export SPD_VM_EXTRA_MODULES="${SPD_VM_EXTRA_MODULES:-} target_core_file" ;;
esac
[ -x "$B/devices/spd-ramdisk" ] || scripts/build.sh "$B"
out=$(mktemp /tmp/spd-bench.XXXXXX)
trap 'rm -f "$out"' EXIT
status=0
BUILD=$B SPD_VM_TEST_TIMEOUT=${SPD_VM_TEST_TIMEOUT:-1200} tests/vm/run.sh $cases >"$out" 2>&1 || status=$?
tr -d '\r' <"$out" | sed -n 's/^bench: //p'
[ $status -eq 0 ] || { tr -d '\r' <"$out" | grep -E '^vm: |^(FAIL|SKIP) - '; tr -d '\r' <"$out" | tail -40; exit $status; }
