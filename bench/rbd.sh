#!/bin/sh
# Ceph RBD side by side, in one run, on the same image of a one-node test
# cluster (tests/rbd/cluster.sh): fio's own rbd engine (librbd in fio's
# process) and fio's nbd engine through spd-rbd over a Unix socket. Both
# run with librbd's cache off (spd-rbd always turns it off; the cluster's
# [client] section does it for fio). Prints IOPS and the ratio spd-rbd /
# librbd direct for each workload.
#
# Usage: bench/rbd.sh [seconds per workload, default 10]
# (WORKLOADS="rw:bs:depth ..." picks the workloads, default
# "randread:4k:32 randwrite:4k:32"; SIZE_MB the image, default 512;
# ROUNDS how often each pair runs, alternating, default 1)
# Needs: a built tree with spd-rbd, fio with its rbd and nbd engines,
# ceph-mon, ceph-osd, ceph-common.
set -eu
cd "$(dirname "$0")/.."
RUNTIME=${1:-10}
SIZE_MB=${SIZE_MB:-512}
ROUNDS=${ROUNDS:-1}
WORKLOADS=${WORKLOADS:-"randread:4k:32 randwrite:4k:32"}
BUILD=$PWD/build
[ -x "$BUILD/devices/spd-rbd" ] || { echo "bench: build/devices/spd-rbd is not built" >&2; exit 1; }
for e in rbd nbd; do
    fio --enghelp 2>/dev/null | grep -qw $e || { echo "bench: fio has no $e engine" >&2; exit 1; }
done
. tests/lib.sh
. tests/rbd/cluster.sh

cluster_start "$WORK/ceph"
printf '[client]\nrbd cache = false\n' >>"$CEPH_CONF"
rbd_t create --size "${SIZE_MB}M" rbd/bench >/dev/null
echo "bench: filling a ${SIZE_MB} MiB image"
fio --name=fill --ioengine=rbd --clientname=admin --pool=rbd --rbdname=bench \
    --rw=write --bs=1M --iodepth=8 --size="${SIZE_MB}M" >/dev/null

iops() {   # the json file (after what the nbd engine prints): IOPS
    python3 -c 'import json,sys; t=open(sys.argv[1]).read()
j=json.loads(t[t.index("{"):])["jobs"][0]
print(int(j["read"]["iops"] + j["write"]["iops"]))' "$1"
}

run() {   # engine rw bs depth: prints IOPS
    out=$WORK/fio.json
    common="--name=b --rw=$2 --bs=$3 --iodepth=$4 --size=${SIZE_MB}M
            --time_based --runtime=$RUNTIME --randrepeat=0 --output-format=json"
    if [ "$1" = rbd ]; then
        fio $common --ioengine=rbd --clientname=admin --pool=rbd --rbdname=bench >"$out"
    else
        sock=$WORK/spd.sock
        start_device "$BUILD/devices/spd-rbd" --image bench "--nbd=nbd+unix:///?socket=$sock"
        fio $common --ioengine=nbd --uri="nbd+unix:///?socket=$sock" >"$out"
        stop_device "$SERVER_PID"
    fi
    iops "$out" || { cat "$out" >&2; exit 1; }
}

printf '%-18s %12s %12s %7s\n' workload "librbd IOPS" "spd-rbd IOPS" ratio
for w in $WORKLOADS; do
    IFS=: read -r rw bs depth <<W
$w
W
    direct=0 spd=0
    for _ in $(seq "$ROUNDS"); do
        direct=$((direct + $(run rbd "$rw" "$bs" "$depth")))
        spd=$((spd + $(run nbd "$rw" "$bs" "$depth")))
    done
    printf '%-18s %12d %12d %6.2fx\n' "$rw $bs QD$depth" $((direct / ROUNDS)) \
        $((spd / ROUNDS)) "$(echo "$spd / $direct" | bc -l)"
done
