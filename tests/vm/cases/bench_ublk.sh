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
# What could make the comparison unfair, side by side: the largest request,
# requests per queue, scheduler, read-ahead (direct I/O skips it).
for d in "$UBLK_DEV" "$LOOP"; do
    q=/sys/block/${d#/dev/}/queue
    echo "bench: ${d#/dev/}: max_sectors_kb $(cat $q/max_sectors_kb)," \
        "nr_requests $(cat $q/nr_requests), scheduler $(sed "s/ *$//" $q/scheduler)," \
        "read_ahead_kb $(cat $q/read_ahead_kb)"
done
bench_compare "ublk (spd-ramdisk, 2 queues of depth 64) against loop (a tmpfs file)" \
    ublk="$UBLK_DEV" loop="$LOOP"
ublk_stop
