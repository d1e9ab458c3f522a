#!/bin/sh
# iSCSI side by side, in one run, on the same RAM backing: Spd
# (spd-ramdisk --iscsi when it has that option, else the test target
# iscsi_serve) and tgt's tgtd on a /dev/shm file. Client: libiscsi's
# iscsi-perf (reads; 4 KiB random at queue depth 32, 1 MiB sequential at
# queue depth 8). Prints IOPS, MB/s, the server's CPU time per I/O (from
# /proc/PID/stat) and the ratios Spd / tgt. Loopback only.
#
# Both servers run at once and the runs alternate between them (Spd, tgt,
# Spd, tgt, ...); each figure is the median of the repetitions, so a
# neighbour's burst of work on the machine hits both alike.
#
# Usage: bench/iscsi.sh [seconds per run, default 10] [repetitions, default 3]
# BUILD names the build directory (default build).
# Needs: a built tree (scripts/build.sh), iscsi-perf and iscsi-ls
# (libiscsi-bin), tgtd and tgtadm (tgt), qemu-img with qemu-block-extra
# (to fill both disks first, so every read touches real pages).
set -eu
cd "$(dirname "$0")/.."
RUNTIME=${1:-10}
REPEAT=${2:-3}
SIZE_MB=1024
BLOCK=512
PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
for cmd in iscsi-perf iscsi-ls tgtd tgtadm qemu-img python3; do
    command -v $cmd >/dev/null || { echo "bench: $cmd is not installed" >&2; exit 1; }
done
B=${BUILD:-build}
[ -x "$B/tests/iscsi_serve" ] || scripts/build.sh "$B"

WORK=$(mktemp -d /tmp/spd-bench.XXXXXX)
SHM=/dev/shm/spd-bench-tgt.$$.img
SPD_PID=""
TGT_PID=""
CTL=""
cleanup() {
    [ -z "$SPD_PID" ] || kill "$SPD_PID" 2>/dev/null || true
    # tgtd ignores SIGTERM while it has targets, and leaves its control
    # socket behind.
    [ -z "$TGT_PID" ] || kill -9 "$TGT_PID" 2>/dev/null || true
    [ -z "$CTL" ] || rm -f "/var/run/tgtd/socket.$CTL" "/var/run/tgtd/socket.$CTL.lock"
    rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT

free_port() {
    while :; do
        port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
        ss -Htln "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
    done
}

# The first target name the portal lists (SendTargets), once it answers.
target_of() {   # port
    i=0
    while :; do
        name=$(iscsi-ls "iscsi://127.0.0.1:$1" 2>/dev/null |
               sed -n 's/^Target:\([^ ]*\) .*/\1/p' | head -1)
        [ -z "$name" ] || { echo "$name"; return; }
        i=$((i + 1))
        [ $i -lt 300 ] || { echo "bench: nothing listens on $1" >&2; exit 1; }
        sleep 0.05
    done
}

# Clock ticks of user+system time a process (all its threads) has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

start_spd() {   # port; sets SPD_PID and SPD_URL
    if "$B/devices/spd-ramdisk" --help 2>&1 | grep -q -- '--iscsi'; then
        "$B/devices/spd-ramdisk" --size ${SIZE_MB}M \
            --iscsi="127.0.0.1:$1" >"$WORK/spd.log" 2>&1 &
    else
        "$B/tests/iscsi_serve" "127.0.0.1:$1" iqn.2026-01.org.example.spd:bench \
            $SIZE_MB $BLOCK >"$WORK/spd.log" 2>&1 &
    fi
    SPD_PID=$!
    SPD_URL="iscsi://127.0.0.1:$1/$(target_of "$1")/0"
}

start_tgt() {   # port; sets TGT_PID and TGT_URL
    truncate -s ${SIZE_MB}M "$SHM"
    # Its own control port (tgtd takes up to 32767), so a tgtd already
    # running is left alone.
    CTL=$(( $1 % 10000 + 100 ))
    tgtd -f -C "$CTL" --iscsi "portal=127.0.0.1:$1" >"$WORK/tgt.log" 2>&1 &
    TGT_PID=$!
    i=0
    until tgtadm -C "$CTL" --lld iscsi --op new --mode target --tid 1 \
            -T iqn.2026-01.org.example.tgt:bench 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 300 ] || { cat "$WORK/tgt.log" >&2; echo "bench: tgtd did not start" >&2; exit 1; }
        sleep 0.05
    done
    tgtadm -C "$CTL" --lld iscsi --op new --mode logicalunit --tid 1 \
        --lun 1 -b "$SHM"
    tgtadm -C "$CTL" --lld iscsi --op bind --mode target --tid 1 -I ALL
    TGT_URL="iscsi://127.0.0.1:$1/$(target_of "$1")/1"
}

# One run: appends "server workload iops mbps cpu_us_per_io" to results.
run_perf() {   # server pid url workload depth bytes_per_io random(0/1)
    blocks=$(( $6 / BLOCK ))
    rflag=""
    [ "$7" = 1 ] && rflag=-r
    before=$(cpu_ticks "$2")
    t0=$(date +%s.%N)
    iscsi-perf -m "$5" -b "$blocks" -t "$RUNTIME" $rflag "$3" 2>&1 |
        tr '\r' '\n' >"$WORK/perf.txt"
    t1=$(date +%s.%N)
    after=$(cpu_ticks "$2")
    iops=$(sed -n 's/^iops average \([0-9]*\).*/\1/p' "$WORK/perf.txt" | tail -1)
    [ -n "$iops" ] || { cat "$WORK/perf.txt" >&2; echo "bench: iscsi-perf failed" >&2; exit 1; }
    python3 - "$iops" "$6" $((after - before)) "$(getconf CLK_TCK)" "$t0" "$t1" \
        "$1" "$4" >>"$WORK/results" <<'PY'
import sys
iops, size, ticks, hz = (int(x) for x in sys.argv[1:5])
ios = iops * (float(sys.argv[6]) - float(sys.argv[5]))
cpu = ticks / hz * 1e6 / ios if ios else 0
print("%s %s %d %.1f %.2f" % (sys.argv[7], sys.argv[8], iops, iops * size / 1e6, cpu))
PY
}

start_spd "$(free_port)"
start_tgt "$(free_port)"
# Fill both disks once so every server reads real pages.
head -c ${SIZE_MB}M /dev/urandom >"$WORK/fill.raw"
qemu-img convert -n -f raw -O raw "$WORK/fill.raw" "$SPD_URL"
qemu-img convert -n -f raw -O raw "$WORK/fill.raw" "$TGT_URL"
rm -f "$WORK/fill.raw"

WORKLOADS="4k-rand-qd32:32:4096:1 1M-seq-qd8:8:1048576:0"
rep=0
while [ $rep -lt "$REPEAT" ]; do
    for w in $WORKLOADS; do
        IFS=: read -r name depth bytes random <<W
$w
W
        run_perf spd "$SPD_PID" "$SPD_URL" "$name" "$depth" "$bytes" "$random"
        run_perf tgt "$TGT_PID" "$TGT_URL" "$name" "$depth" "$bytes" "$random"
    done
    rep=$((rep + 1))
done

python3 - "$WORK/results" "$RUNTIME" "$REPEAT" <<'PY'
import statistics, sys
runs = {}
order = []
for line in open(sys.argv[1]):
    s, w, iops, mbps, cpu = line.split()
    runs.setdefault((s, w), []).append((float(iops), float(mbps), float(cpu)))
    if w not in order:
        order.append(w)
med = {k: tuple(statistics.median(r[i] for r in v) for i in range(3))
       for k, v in runs.items()}
print("iscsi-perf, median of %s runs of %s s, 512-byte blocks, 1 GiB in RAM"
      % (sys.argv[3], sys.argv[2]))
print("%-14s %-5s %10s %9s %12s   %s" % ("workload", "server", "IOPS", "MB/s",
                                         "CPU us/IO", "IOPS of each run"))
for w in order:
    for s in ("spd", "tgt"):
        i, m, c = med[(s, w)]
        each = " ".join("%.0f" % r[0] for r in runs[(s, w)])
        print("%-14s %-5s %10.0f %9.1f %12.2f   %s" % (w, s, i, m, c, each))
print()
print("%-14s %12s %12s %14s" % ("workload", "Spd/tgt IOPS", "Spd/tgt MB/s",
                                "Spd/tgt CPU/IO"))
for w in order:
    a, b = med[("spd", w)], med[("tgt", w)]
    r = lambda x, y: x / y if y else 0
    print("%-14s %11.2fx %11.2fx %13.2fx" % (w, r(a[0], b[0]), r(a[1], b[1]),
                                             r(a[2], b[2])))
PY
