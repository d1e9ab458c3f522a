# bench.sh - sourced by the bench_* cases in cases/, the guest half of
# bench/vm.sh (not tests: run.sh runs them only when named). fio on
# several block devices of the same size, each workload run three times
# on each device in turn (so that a burst of other work on the host hits
# all alike), and a table of the medians with the ratio of the first
# device (Spd's) to each other one. Sourced after lib.sh (or ublk.sh).
need fio python3

BENCH_RUNTIME=4     # seconds per run
BENCH_SIZE_MB=128   # every disk
BENCH_FIO_CPU=""    # the vCPU fio runs on (bench_apart), or any
BENCH_SERVER=""     # prefix of a server's command line (bench_apart)

# Network targets (NBD, iSCSI) serve initiators on other machines. Here
# both sides share one guest of two vCPUs, where the scheduler likes to
# run a server on fio's vCPU: every request then switches between two
# processes' address spaces twice, and TCG flushes its whole software TLB
# on each switch, a cost a real CPU (with PCID) barely has and that a
# kernel target (LIO: kernel threads borrow the address space) never
# pays. So, for every target alike, fio gets vCPU 0 and the server vCPU 1:
# user-space servers start under "$BENCH_SERVER", LIO through its
# iscsi/cpus_allowed_list. The initiator's kernel work runs where the
# kernel puts it.
bench_apart() {
    BENCH_FIO_CPU=0
    BENCH_SERVER="taskset -c 1"
    echo "bench: fio on vCPU 0, every target's server on vCPU 1"
}

# Every block of each device written once, so that reads touch real pages,
# and no I/O scheduler, so that each disk gets fio's requests as they are.
bench_prepare() {
    for d in "$@"; do
        dd if=/dev/zero of="$d" bs=1M count=$BENCH_SIZE_MB oflag=direct 2>/dev/null ||
            fail "filling $d"
        s=/sys/block/$(basename "$(readlink -f "$d")")/queue/scheduler
        [ ! -w "$s" ] || echo none >"$s" 2>/dev/null || true
    done
}

# One fio run on device $1 (rw $2, block size $3, queue depth $4): prints
# IOPS for 4 KiB blocks, MB/s for larger ones.
bench_fio() {
    fio --name=b --filename="$1" --direct=1 --ioengine=libaio --rw="$2" \
        --bs="$3" --iodepth="$4" --runtime="$BENCH_RUNTIME" --time_based \
        --size=${BENCH_SIZE_MB}M ${BENCH_FIO_CPU:+--cpus_allowed=$BENCH_FIO_CPU} \
        --output-format=json --output="$WORK/fio.json" >/dev/null 2>&1 || { cat "$WORK/fio.json" >&2; return 1; }
    python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r = j["read"] if j["read"]["io_bytes"] else j["write"]
print("%.0f" % r["iops"] if sys.argv[2] == "4k" else "%.1f" % (r["bw_bytes"] / 1e6))
' "$WORK/fio.json" "$3"
}

# bench_compare TITLE NAME=DEVICE...: 4 KiB random reads and writes at
# queue depth 1 and 32, 1 MiB sequential reads and writes at depth 8, on
# every device; prints one "bench:" line per workload with the medians and
# the ratios first/other.
bench_compare() {
    title=$1
    shift
    : >"$WORK/results"
    for w in "randread 4k 1" "randread 4k 32" "randwrite 4k 1" "randwrite 4k 32" \
             "read 1M 8" "write 1M 8"; do
        for i in 1 2 3; do
            for d in "$@"; do
                v=$(bench_fio "${d#*=}" $w) || fail "fio $w on ${d#*=}"
                echo "$w ${d%%=*} $v" >>"$WORK/results"
            done
        done
    done
    python3 - "$WORK/results" "$title" "$BENCH_RUNTIME" <<'PY'
import statistics, sys
runs, names, loads = {}, [], []
for line in open(sys.argv[1]):
    rw, bs, qd, name, value = line.split()
    load = "%s %s QD%s (%s)" % (rw, bs, qd, "IOPS" if bs == "4k" else "MB/s")
    runs.setdefault((load, name), []).append(float(value))
    names += [name] if name not in names else []
    loads += [load] if load not in loads else []
first, others = names[0], names[1:]
out = lambda s: print("bench: " + s)
out("%s: median of 3 runs of %s s each, emulated (TCG) timings: compare "
    "only within this boot" % (sys.argv[2], sys.argv[3]))
out("%-26s" % "workload" + "".join("%10s" % n for n in names) +
    "".join("%12s" % (first + "/" + n) for n in others))
for load in loads:
    med = {n: statistics.median(runs[(load, n)]) for n in names}
    out("%-26s" % load + "".join("%10.0f" % med[n] if "IOPS" in load else
                                 "%10.1f" % med[n] for n in names) +
        "".join("%11.2fx" % (med[first] / med[n] if med[n] else 0) for n in others))
PY
}
