#!/bin/sh
# Not a test: the guest half of bench/ublk_vm.sh (run.sh runs it only when
# named). fio on /dev/ublkb0 (spd-ramdisk) and on a loop device over a
# tmpfs file, 4 KiB random reads and writes at queue depth 1 and 32, 1 MiB
# sequential reads and writes at depth 8, alternating between the two
# disks (the median of three runs each); prints one "bench:" line per workload with the ratio ublk/loop.
. "$(dirname "$0")/../ublk.sh"
need fio losetup python3

RUNTIME=4
SIZE_MB=128
ublk_serve "$RAMDISK" --size ${SIZE_MB}M --queues 2 --queue-depth 64
truncate -s ${SIZE_MB}M /dev/shm/loop.img
LOOP=$(losetup -f --show /dev/shm/loop.img) || fail "losetup"
at_exit "losetup -d $LOOP; rm -f /dev/shm/loop.img"
# Every block written first, so that reads touch real pages on both.
for d in "$UBLK_DEV" "$LOOP"; do
    dd if=/dev/zero of="$d" bs=1M count=$SIZE_MB oflag=direct 2>/dev/null ||
        fail "filling $d"
done

run() {  # device rw bs depth: prints IOPS and MB/s
    fio --name=b --filename="$1" --direct=1 --ioengine=libaio --rw="$2" \
        --bs="$3" --iodepth="$4" --runtime="$RUNTIME" --time_based \
        --size=${SIZE_MB}M --output-format=json --output="$WORK/fio.json" \
        >/dev/null 2>&1 || { cat "$WORK/fio.json"; fail "fio $*"; }
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r = j["read"] if j["read"]["io_bytes"] else j["write"]
print("%.0f %.1f" % (r["iops"], r["bw_bytes"] / 1e6))' "$WORK/fio.json"
}

echo "bench: emulated (TCG) timings: compare only within this boot"
printf 'bench: %-22s %12s %12s %8s\n' workload "ublk" "loop" "ublk/loop"
# The median of three runs on each, alternating, so that a burst of other
# work on the host hits both alike.
median() { sort -n | sed -n 2p; }
for w in "randread 4k 1" "randread 4k 32" "randwrite 4k 1" "randwrite 4k 32" \
         "read 1M 8" "write 1M 8"; do
    set -- $w
    col=1 unit=IOPS
    [ "$2" = 1M ] && unit=MB/s col=2
    : >"$WORK/u"; : >"$WORK/l"
    for i in 1 2 3; do
        run "$UBLK_DEV" "$@" | cut -d' ' -f$col >>"$WORK/u"
        run "$LOOP" "$@" | cut -d' ' -f$col >>"$WORK/l"
    done
    uv=$(median <"$WORK/u") lv=$(median <"$WORK/l")
    ratio=$(python3 -c "print('%.2f' % ($uv / $lv if $lv else 0))")
    printf 'bench: %-22s %12s %12s %8s\n' "$1 $2 QD$3 ($unit)" "$uv" "$lv" "${ratio}x"
done
ublk_stop
