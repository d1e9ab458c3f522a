#!/bin/sh
# ublk against the kernel's loop device, in one boot of the test guest
# (tests/vm): fio 4 KiB random reads and writes at queue depth 1 and 32 and
# 1 MiB sequential at depth 8, on /dev/ublkb0 served by spd-ramdisk and on
# a loop device over a tmpfs file, printing IOPS or MB/s and the ratios
# ublk/loop. The guest runs under software emulation (TCG): the figures
# are comparable only within one boot, never with the host's.
#
# Usage (as root): bench/ublk_vm.sh (4 s per run, the median of three)
# BUILD names the build directory (default build). Needs what tests/vm
# needs (qemu-system-x86, busybox-static, the 6.12 kernel package) and fio.
set -eu
cd "$(dirname "$0")/.."
B=${BUILD:-build}
[ -x "$B/devices/spd-ramdisk" ] || scripts/build.sh "$B"
out=$(mktemp /tmp/spd-bench.XXXXXX)
trap 'rm -f "$out"' EXIT
status=0
BUILD=$B SPD_VM_TEST_TIMEOUT=${SPD_VM_TEST_TIMEOUT:-1200} tests/vm/run.sh bench_ublk >"$out" 2>&1 || status=$?
tr -d '\r' <"$out" | sed -n 's/^bench: //p'
[ $status -eq 0 ] || { tr -d '\r' <"$out" | tail -40; exit $status; }
