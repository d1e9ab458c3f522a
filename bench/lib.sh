# lib.sh - sourced by the bench scripts (after their cd to the top of the
# tree): a scratch folder $WORK removed at exit with the server $SERVER
# if one runs, and what the NBD benchmarks share.
#
#   need CMD...              each installed, or exit 1 saying which
#   wait_socket PATH         until the Unix socket is there (60 s)
#   cpu_ticks PID            user+system clock ticks the process has used
#   stop_server              SIGTERM to $SERVER, and wait for it
#   fio_nbd URI RW BS DEPTH  one fio run (its nbd engine, $RUNTIME seconds
#                            over $SIZE_MB MiB): "IOPS MB/s CPU-us-per-I/O",
#                            the CPU time $SERVER used per I/O
#   fio_fill URI             write the whole disk once, so every server
#                            reads real pages
PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
WORK=$(mktemp -d "${TMPDIR:-/tmp}/spd-bench.XXXXXX")
SERVER=""
bench_cleanup() {
    [ -z "$SERVER" ] || kill "$SERVER" 2>/dev/null || true
    rm -rf "$WORK"
}
trap bench_cleanup EXIT

need() {
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null ||
            { echo "bench: $cmd is not installed" >&2; exit 1; }
    done
}

wait_socket() {
    i=0
    while [ ! -S "$1" ]; do
        i=$((i + 1))
        [ $i -lt 1200 ] || { echo "bench: no socket $1" >&2; exit 1; }
        sleep 0.05
    done
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

stop_server() {
    kill "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
}

fio_fill() {
    fio --name=fill --ioengine=nbd --uri="$1" --rw=write --bs=1M --iodepth=8 \
        --size="${SIZE_MB}M" >/dev/null
}

fio_nbd() {
    before=$(cpu_ticks "$SERVER")
    fio --name=bench --ioengine=nbd --uri="$1" --rw="$2" --bs="$3" \
        --iodepth="$4" --size="${SIZE_MB}M" --time_based --runtime="$RUNTIME" \
        --output-format=json --output="$WORK/fio.json" >/dev/null
    after=$(cpu_ticks "$SERVER")
    python3 - "$WORK/fio.json" $((after - before)) "$(getconf CLK_TCK)" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
ios = job["read"]["total_ios"] + job["write"]["total_ios"]
bw = job["read"]["bw_bytes"] + job["write"]["bw_bytes"]
iops = job["read"]["iops"] + job["write"]["iops"]
print("%.0f %.1f %.2f" % (iops, bw / 1e6, ticks / hz * 1e6 / ios if ios else 0))
PY
}
