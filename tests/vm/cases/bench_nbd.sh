#!/bin/sh
# Not a test: part of bench/vm.sh (run.sh runs it only when named). fio on
# the kernel's NBD client (nbd-client, one connection each) attached to
# spd-ramdisk (/dev/nbd0) and to nbdkit's memory plugin (/dev/nbd1), both
# on the guest's loopback, each on the other vCPU than fio (bench_apart);
# the ratios Spd/nbdkit.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../bench.sh"
need nbd-client nbdkit taskset
bench_apart

attach() {   # DEVICE PORT
    nbd-client 127.0.0.1 "$2" "$1" -N '' >/dev/null || fail "nbd-client on port $2"
    at_exit "nbd-client -d $1 >/dev/null 2>&1"
    wait_until 30 test "$(cat /sys/block/${1#/dev/}/size)" -gt 0 ||
        fail "$1 has no size"
}

port=$(free_port)
start_device $BENCH_SERVER "$RAMDISK" --size ${BENCH_SIZE_MB}M --nbd "nbd://127.0.0.1:$port/"
attach /dev/nbd0 "$port"
port=$(free_port)
$BENCH_SERVER nbdkit -f -i 127.0.0.1 -p "$port" -P "$WORK/nbdkit.pid" memory ${BENCH_SIZE_MB}M \
    >"$WORK/nbdkit.log" 2>&1 &
PIDS="$! $PIDS"
wait_until 30 test -s "$WORK/nbdkit.pid" || { cat "$WORK/nbdkit.log"; fail "nbdkit did not start"; }
attach /dev/nbd1 "$port"
bench_prepare /dev/nbd0 /dev/nbd1
bench_compare "NBD: nbd-client on spd-ramdisk against nbdkit memory" \
    Spd=/dev/nbd0 nbdkit=/dev/nbd1
