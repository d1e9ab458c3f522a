#!/bin/sh
# Python devices side by side, in one run: Spd's Python RAM disk
# (bindings/python/examples/ramdisk.py: the protocol in C, the GIL taken
# only for the device's call) and nbdkit's Python plugin running the same
# RAM disk written the same way (bench/python/nbdkit_ramdisk.py), each
# with the parallel thread model. Client: fio's nbd engine
# (libnbd) over a Unix socket. Prints IOPS, MB/s, the server's CPU time
# per I/O and the ratios Spd / nbdkit.
#
# Usage: bench/python.sh [seconds per workload, default 10]
# (WORKLOADS="rw:bs:depth ..." picks the workloads)
# Needs: a built tree (scripts/build.sh), fio with its nbd engine, nbdkit
# with nbdkit-plugin-python, Debian's python3.
set -eu
cd "$(dirname "$0")/.."
RUNTIME=${1:-10}
SIZE_MB=512
. bench/lib.sh
need fio nbdkit python3
fio --enghelp | grep -qw nbd || { echo "bench: fio has no nbd engine" >&2; exit 1; }
nbdkit python --version >/dev/null 2>&1 ||
    { echo "bench: nbdkit's python plugin is not installed (nbdkit-plugin-python)" >&2; exit 1; }
[ -f build/bindings/python/spd/__init__.py ] || scripts/build.sh
export PYTHONPATH=$PWD/build/bindings/python

start_server() {   # name
    sock=$WORK/$1.sock
    rm -f "$sock"
    case $1 in
    spd-python)
        /usr/bin/python3 bindings/python/examples/ramdisk.py \
            --size ${SIZE_MB}M --nbd "nbd+unix:///?socket=$sock" >/dev/null 2>&1 &
        SERVER=$! ;;
    nbdkit-python)
        nbdkit -f -U "$sock" python bench/python/nbdkit_ramdisk.py \
            size=${SIZE_MB}M >/dev/null 2>&1 &
        SERVER=$! ;;
    esac
    wait_socket "$sock"
    fio_fill "nbd+unix:///?socket=$sock"
}

WORKLOADS=${WORKLOADS:-"randread:4k:1 randread:4k:32 randwrite:4k:32 read:1M:8 write:1M:8"}
for s in spd-python nbdkit-python; do
    start_server "$s"
    for w in $WORKLOADS; do
        IFS=: read -r rw bs depth <<W
$w
W
        echo "$s $w $(fio_nbd "nbd+unix:///?socket=$WORK/$s.sock" \
                       "$rw" "$bs" "$depth")" >>"$WORK/results"
    done
    stop_server
done

python3 - "$WORK/results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    server, workload, iops, mbps, cpu = line.split()
    rows.setdefault(workload, {})[server] = (float(iops), float(mbps), float(cpu))
print("%-16s %-14s %10s %9s %10s" % ("workload", "server", "IOPS", "MB/s", "CPU us/IO"))
for w, servers in rows.items():
    for s, (iops, mbps, cpu) in servers.items():
        print("%-16s %-14s %10.0f %9.1f %10.2f" % (w, s, iops, mbps, cpu))
print()
print("ratios Spd / nbdkit (IOPS; CPU per I/O, lower is better for Spd):")
for w, servers in rows.items():
    a, b = servers.get("spd-python"), servers.get("nbdkit-python")
    if a and b and b[0] and b[2]:
        print("  %-16s IOPS x%.2f   CPU/IO x%.2f" % (w, a[0] / b[0], a[2] / b[2]))
PY
