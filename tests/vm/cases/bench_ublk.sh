#!/bin/sh
# Not a test: part of bench/vm.sh (run.sh runs it only when named). fio on
# /dev/ublkb0 (spd-ramdisk) and on the kernel's loop device over a tmpfs
# file; the ratios ublk/loop.
. "$(dirname "$0")/../ublk.sh"
. "$(dirname "$0")/../bench.sh"
need losetup

ublk_serve "$RAMDISK" --size ${BENCH_SIZE_MB}M --queues 2 --queue-depth 64
truncate -s ${BENCH_SIZE_MB}M /dev/shm/loop.img
LOOP=$(losetup -f --show /dev/shm/loop.img) || fail "losetup"
at_exit "losetup -d $LOOP; rm -f /dev/shm/loop.img"
bench_prepare "$UBLK_DEV" "$LOOP"
bench_compare "ublk (spd-ramdisk, 2 queues of depth 64) against loop (a tmpfs file)" \
    ublk="$UBLK_DEV" loop="$LOOP"
ublk_stop
