#!/bin/sh
# spd-stgtest beside fio, the same workload on the same target in one run:
# random reads and writes half and half, requests of 4k-64k, THREADS
# connections (fio jobs) of DEPTH requests in flight each.
#
#   nbd   spd-ramdisk (1 GiB) over a Unix socket: fio's nbd engine (libnbd)
#         against spd-stgtest's NBD target (libnbd)
#   file  a 1 GiB file in $TMPDIR with O_DIRECT: fio's io_uring engine
#         against spd-stgtest's file target (io_uring)
#
# Each pair runs two ways: fio without verify against spd-stgtest
# --no-verify (the load alone), then fio with verify=crc32c and
# verify_backlog against spd-stgtest's verify. They do not check the same
# thing: fio reads back each batch of blocks it wrote, in extra reads
# counted with the others, and its jobs keep to their own part of the
# disk (offset_increment), or one job's write would fail another's check;
# spd-stgtest checks every read of the workload itself against the last
# write of each block, its threads sharing the whole disk.
# Prints IOPS, MB/s, and read and write latency p50/p99/p99.9 (fio's
# total latency, submission to completion, as spd-stgtest measures it).
#
# Usage: bench/stgtest.sh [seconds per run, default 10] [nbd|file ...]
# THREADS (2) and DEPTH (8) from the environment.
# Needs: a built tree (scripts/build.sh), fio, python3.
set -eu
cd "$(dirname "$0")/.."
RUNTIME=${1:-10}
[ $# -gt 0 ] && shift
TARGETS=${*:-nbd file}
THREADS=${THREADS:-2}
DEPTH=${DEPTH:-8}
. bench/lib.sh
need fio python3
[ -x build/tools/stgtest/spd-stgtest ] || scripts/build.sh
STGTEST=build/tools/stgtest/spd-stgtest

# fio JSON or spd-stgtest JSON -> "IOPS MB/s r50 r99 r99.9 w50 w99 w99.9"
summary() {
    python3 - "$1" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text[text.index("{"):])    # fio's nbd engine talks first
if "jobs" in d:
    j = d["jobs"][0]
    def lat(side, q):
        p = j[side]["lat_ns"].get("percentile", {})
        return p.get(q, 0) / 1e3
    iops = j["read"]["iops"] + j["write"]["iops"]
    mbs = (j["read"]["bw_bytes"] + j["write"]["bw_bytes"]) / 1e6
    qs = ["50.000000", "99.000000", "99.900000"]
    r = [lat("read", q) for q in qs]
    w = [lat("write", q) for q in qs]
else:
    o = d["ops"]
    iops = o["read"]["iops"] + o["write"]["iops"]
    mbs = o["read"]["mb_per_s"] + o["write"]["mb_per_s"]
    r = [o["read"]["latency_us"][q] for q in ("p50", "p99", "p99.9")]
    w = [o["write"]["latency_us"][q] for q in ("p50", "p99", "p99.9")]
print("%.0f %.1f %s" % (iops, mbs, " ".join("%.0f" % x for x in r + w)))
EOF
}

row() {   # label summary
    set -- "$1" $2
    printf '%-32s %9s %8s %8s %8s %8s %8s %8s %8s\n' "$@"
}

header() {
    printf '%-32s %9s %8s %8s %8s %8s %8s %8s %8s\n' "" IOPS MB/s \
        "r p50" "r p99" "r p99.9" "w p50" "w p99" "w p99.9"
}

PART=$((1024 / THREADS))M
# --norandommap: addresses drawn freely, as spd-stgtest draws them. With
# its random map fio cuts a request short where it meets blocks already
# done in the pass, so its sizes lean small (a mean of 25 KiB, not 34).
FIO_COMMON="--rw=randrw --rwmixread=50 --bsrange=4k-64k --norandommap
  --iodepth=$DEPTH
  --numjobs=$THREADS --size=$PART --offset_increment=$PART --group_reporting
  --time_based --runtime=$RUNTIME --lat_percentiles=1 --output-format=json
  --randrepeat=0"
# 4096-byte blocks, as fio's sizes are multiples of the smallest.
STG_COMMON="--mix read=50,write=50 --bs 4k-64k --block-size 4096 --threads $THREADS
  --queue-depth $DEPTH --duration $RUNTIME --json"

pair() {   # name fio-target-args... -- stgtest-target
    name=$1
    shift
    fio_args=""
    while [ "$1" != -- ]; do fio_args="$fio_args $1"; shift; done
    target=$2
    # shellcheck disable=SC2086
    fio --name=bench $fio_args $FIO_COMMON >"$WORK/fio.json" 2>"$WORK/fio.err"
    # shellcheck disable=SC2086
    $STGTEST $STG_COMMON --no-verify "$target" >"$WORK/stg.json"
    row "$name: fio" "$(summary "$WORK/fio.json")"
    row "$name: spd-stgtest" "$(summary "$WORK/stg.json")"
    # shellcheck disable=SC2086
    fio --name=bench $fio_args $FIO_COMMON --verify=crc32c \
        --verify_backlog=1024 --verify_fatal=1 --verify_state_save=0 \
        >"$WORK/fio.json" 2>"$WORK/fio.err"
    # shellcheck disable=SC2086
    $STGTEST $STG_COMMON "$target" >"$WORK/stg.json"
    # "verify limited": fio cannot check blocks that requests of other
    # sizes overwrote in part.
    limited=""
    grep -q "verify limited" "$WORK/fio.err" && limited=" (limited)"
    row "$name: fio verify$limited" "$(summary "$WORK/fio.json")"
    row "$name: spd-stgtest verify" "$(summary "$WORK/stg.json")"
}

echo "randrw 50/50, 4k-64k, $THREADS x depth $DEPTH, ${RUNTIME}s per run (latency in us)"
header
for t in $TARGETS; do
    case $t in
    nbd)
        sock=$WORK/spd.sock
        build/devices/spd-ramdisk --size 1G --nbd "nbd+unix:///?socket=$sock" \
            2>"$WORK/server.log" &
        SERVER=$!
        wait_socket "$sock"
        pair "nbd ramdisk" --ioengine=nbd "--uri=nbd+unix:///?socket=$sock" \
            -- "nbd+unix:///?socket=$sock"
        stop_server
        ;;
    file)
        img=$WORK/file.img
        fallocate -l 1G "$img" 2>/dev/null || truncate -s 1G "$img"
        pair "file io_uring" --ioengine=io_uring --direct=1 "--filename=$img" \
            -- "$img"
        ;;
    *)
        echo "bench: no target '$t' (nbd, file)" >&2
        exit 2
        ;;
    esac
done
