#!/bin/sh
# NBD side by side, in one run, on the same RAM backing: spd-ramdisk,
# nbdkit memory, and qemu-nbd on a /dev/shm file. Client: fio's nbd engine
# (libnbd) over a Unix socket. Prints IOPS, MB/s, the server's CPU time per
# I/O (from /proc/PID/stat) and the ratios Spd / nbdkit and Spd / qemu-nbd.
#
# With --tls: spd-ramdisk and nbdkit memory only, both with --tls=require
# and the same X.509 certificates (made with certtool), fio over
# nbds+unix://.
#
# Usage: bench/nbd.sh [--tls] [seconds per workload, default 10]
# (WORKLOADS="rw:bs:depth ..." picks the workloads, e.g. "read:1M:8")
# Needs: a built tree (scripts/build.sh), fio, nbdkit, qemu-nbd (certtool
# with --tls).
set -eu
cd "$(dirname "$0")/.."
TLS=0
if [ "${1:-}" = --tls ]; then
    TLS=1
    shift
fi
RUNTIME=${1:-10}
SIZE_MB=1024
. bench/lib.sh
need fio nbdkit qemu-nbd python3
[ -x build/devices/spd-ramdisk ] || scripts/build.sh

SCHEME=nbd
if [ $TLS = 1 ]; then
    need certtool
    SCHEME=nbds
    # A CA and a server certificate for both servers; libnbd finds the
    # client's copy of the CA in $HOME/.pki/libnbd.
    pki=$WORK/pki
    mkdir -p "$pki" "$WORK/.pki/libnbd"
    certtool --generate-privkey --key-type ecdsa --outfile "$pki/ca-key.pem" 2>/dev/null
    printf 'cn = bench CA\nca\ncert_signing_key\n' >"$WORK/ca.info"
    certtool --generate-self-signed --load-privkey "$pki/ca-key.pem" \
        --template "$WORK/ca.info" --outfile "$pki/ca-cert.pem" 2>/dev/null
    certtool --generate-privkey --key-type ecdsa --outfile "$pki/server-key.pem" 2>/dev/null
    printf 'cn = localhost\ndns_name = localhost\ntls_www_server\nencryption_key\nsigning_key\n' \
        >"$WORK/server.info"
    certtool --generate-certificate --load-ca-certificate "$pki/ca-cert.pem" \
        --load-ca-privkey "$pki/ca-key.pem" --load-privkey "$pki/server-key.pem" \
        --template "$WORK/server.info" --outfile "$pki/server-cert.pem" 2>/dev/null
    cp "$pki/ca-cert.pem" "$WORK/.pki/libnbd/"
    export HOME=$WORK
fi

start_server() {   # name
    sock=$WORK/$1.sock
    rm -f "$sock"
    case $1 in
    spd)
        if [ $TLS = 1 ]; then
            set -- --tls=require --tls-certificates "$pki"
        else
            set --
        fi
        build/devices/spd-ramdisk --size ${SIZE_MB}M "$@" \
            --nbd "$SCHEME+unix:///?socket=$sock" >/dev/null 2>&1 &
        SERVER=$! ;;
    nbdkit)
        if [ $TLS = 1 ]; then
            set -- --tls=require --tls-certificates="$pki"
        else
            set --
        fi
        nbdkit -f -U "$sock" "$@" memory ${SIZE_MB}M >/dev/null 2>&1 &
        SERVER=$! ;;
    qemu-nbd)
        truncate -s ${SIZE_MB}M /dev/shm/spd-bench.img
        qemu-nbd -f raw -t -k "$sock" --cache=none --aio=threads \
            /dev/shm/spd-bench.img >/dev/null 2>&1 &
        SERVER=$! ;;
    esac
    wait_socket "$sock"
    fio_fill "$SCHEME+unix:///?socket=$sock"
}

WORKLOADS=${WORKLOADS:-"randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32 read:1M:8 write:1M:8"}
SERVERS="spd nbdkit qemu-nbd"
[ $TLS = 0 ] || SERVERS="spd nbdkit"
for s in $SERVERS; do
    start_server "$s"
    for w in $WORKLOADS; do
        IFS=: read -r rw bs depth <<W
$w
W
        echo "$s $w $(fio_nbd "$SCHEME+unix:///?socket=$WORK/$s.sock" \
                       "$rw" "$bs" "$depth")" >>"$WORK/results"
    done
    stop_server
    rm -f /dev/shm/spd-bench.img
done

python3 - "$WORK/results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    s, w, iops, mbps, cpu = line.split()
    rows[(s, w)] = (float(iops), float(mbps), float(cpu))
workloads = []
for s, w in rows:
    if w not in workloads:
        workloads.append(w)
print("%-18s %-9s %10s %9s %12s" % ("workload", "server", "IOPS", "MB/s", "CPU us/IO"))
for w in workloads:
    for s in ("spd", "nbdkit", "qemu-nbd"):
        if (s, w) in rows:
            i, m, c = rows[(s, w)]
            print("%-18s %-9s %10.0f %9.1f %12.2f" % (w, s, i, m, c))
print()
peers = [p for p in ("nbdkit", "qemu-nbd") if (p, workloads[0]) in rows]
print("%-18s" % "workload" +
      "".join(" %-22s" % ("Spd/%s IOPS  CPU" % p) for p in peers))
for w in workloads:
    spd = rows[("spd", w)]
    out = "%-18s" % w
    for peer in peers:
        p = rows[(peer, w)]
        out += " %8.2fx %8.2fx    " % (spd[0] / p[0] if p[0] else 0,
                                       spd[2] / p[2] if p[2] else 0)
    print(out)
PY
