#!/bin/sh
# spd-rbd on a one-node Ceph cluster: refusals (no cluster, a missing pool,
# image or snapshot, a bad key) with exit 2 and one line; qemu-img round
# trips over NBD and iSCSI whose data `rbd export` finds in the image; fio
# with verify through fio's nbd engine; discard that reads zeros, extents
# from the object map; a resize seen by new connections; a snapshot
# served read-only.
. "$(dirname "$0")/../lib.sh"
RBD=$BUILD/devices/spd-rbd
[ -x "$RBD" ] || skip "spd-rbd is not built (librbd-dev missing)"
need qemu-img qemu-io nbdinfo fio cmp
. "$(dirname "$0")/cluster.sh"
cluster_start "$WORK/ceph"
rbd_t create --size 32M rbd/img || fail "rbd create"
ok "one-node cluster up"

# --- refusals: exit 2, one line naming the problem, nothing served ------
expect_refusal() {   # words args...
    words=$1
    shift
    status=0
    timeout 30 "$RBD" "$@" --check >"$WORK/out" 2>"$WORK/err" || status=$?
    expect_eq "$status" 2 "exit status of spd-rbd $*"
    expect_eq "$(wc -l <"$WORK/err")" 1 "lines on stderr of spd-rbd $* ($(cat "$WORK/err"))"
    grep -q -- "$words" "$WORK/err" || { cat "$WORK/err" >&2; fail "spd-rbd $*: message does not name '$words'"; }
}
expect_refusal '--image NAME is required'
expect_refusal 'no image nope in pool rbd' --image nope
expect_refusal 'pool nope does not exist' --pool nope --image img
expect_refusal 'snapshot nope' --image img --snap nope
expect_refusal 'No such file' --conf "$WORK/missing.conf" --image img
expect_refusal 'not the size given' --image img --size 16M
sed "s/^mon host.*/mon host = 127.0.0.1:$(free_port)/" "$CEPH_CONF" >"$WORK/nomon.conf"
expect_refusal 'did not answer in time' --conf "$WORK/nomon.conf" --timeout 2 --image img
grep -v '^keyring' "$CEPH_CONF" | sed "s|^\[global\]|[global]\nkeyring = $WORK/badkey|" >"$WORK/badkey.conf"
ceph-authtool "$WORK/badkey" --create-keyring --gen-key -n client.admin >/dev/null
expect_refusal 'permission denied' --conf "$WORK/badkey.conf" --image img
expect_refusal 'permission denied' --id nobody --image img
if [ ! -e /etc/ceph/ceph.conf ] && [ ! -e "${HOME:-/}/.ceph/config" ]; then
    (cd "$WORK" && unset CEPH_CONF && expect_refusal 'no Ceph configuration found' --image img) ||
        exit 1
fi
ok "refusals: no pool, image, snapshot, conf, cluster or key: exit 2 with one line"

# --- NBD: qemu-img round trip, the data in the image ---------------------
head -c 32M /dev/urandom >"$WORK/data.raw"
start_device "$RBD" --image img --nbd nbd://127.0.0.1:0/
URI=$(serving_uri "$WORK/server.log" nbd://)
nbdinfo --json "$URI" >"$WORK/info.json"
python3 - "$WORK/info.json" <<'PY' || fail "nbdinfo facts"
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
assert e["export-size"] == 32 << 20, e["export-size"]
assert e["can_trim"] and e["can_zero"] and e["can_fua"] and e["can_flush"]
PY
qemu-img convert -n -f raw -O raw "$WORK/data.raw" "$URI" || fail "qemu-img convert over NBD"
qemu-img compare -f raw -F raw "$WORK/data.raw" "$URI" >/dev/null || fail "qemu-img compare over NBD"
rbd_t export rbd/img - 2>/dev/null >"$WORK/export.raw" || fail "rbd export"
cmp "$WORK/data.raw" "$WORK/export.raw" || fail "rbd export holds what was written over NBD"
ok "NBD: qemu-img convert and compare, rbd export finds the same bytes"

# Discard and write zeroes of whole objects: zeros, and holes in the map.
qemu-io -f raw -c 'discard 4M 4M' -c 'write -z -u 12M 4M' -c 'write -f -P 0x5a 20M 64k' \
    -c flush "$URI" >/dev/null || fail "discard, write zeroes, FUA write"
qemu-io -f raw -c 'read -P 0 4M 4M' -c 'read -P 0 12M 4M' -c 'read -P 0x5a 20M 64k' \
    "$URI" | grep -c '^read' | grep -qx 3 || fail "discarded ranges read zeros, the FUA write its pattern"
nbdinfo --map "$URI" >"$WORK/map"
grep -Eq '^ *4194304 +4194304 +3 ' "$WORK/map" || { cat "$WORK/map"; fail "the discarded object is a hole in the map"; }
grep -Eq '^ *0 +4194304 +0 ' "$WORK/map" || { cat "$WORK/map"; fail "the first object is data in the map"; }
stop_device "$SERVER_PID"
rbd_t export rbd/img - 2>/dev/null >"$WORK/export.raw" || fail "rbd export"
cmp -n 4M -i 4M:0 "$WORK/export.raw" /dev/zero || fail "the discarded range is zeros in the image"
ok "NBD: discard and write zeroes read zeros and show as holes (nbdinfo --map)"

# --- fio with verify through its nbd engine -----------------------------
if fio --enghelp 2>/dev/null | grep -qw nbd; then
    start_device "$RBD" --image img --nbd nbd://127.0.0.1:0/
    URI=$(serving_uri "$WORK/server.log" nbd://)
    fio --name=verify --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k \
        --iodepth=16 --size=16M --verify=crc32c --do_verify=1 \
        --verify_fatal=1 --randrepeat=0 --verify_state_save=0 >"$WORK/fio.out" 2>&1 ||
        { cat "$WORK/fio.out" >&2; fail "fio verify over NBD"; }
    grep -q 'err= 0' "$WORK/fio.out" || { cat "$WORK/fio.out" >&2; fail "fio reports errors"; }
    stop_device "$SERVER_PID"
    ok "fio random writes with crc32c verify through its nbd engine"
else
    skip_part "fio has no nbd engine"
fi

# --- iSCSI: libiscsi through qemu-img and qemu-io -----------------------
if qemu-img --help | grep -q '^Supported formats:.* iscsi'; then
    head -c 32M /dev/urandom >"$WORK/data.raw"
    start_device "$RBD" --image img --iscsi 127.0.0.1:0
    URL=$(serving_uri "$WORK/server.log" iscsi://)
    qemu-img convert -n -f raw -O raw "$WORK/data.raw" "$URL" || fail "qemu-img convert over iSCSI"
    qemu-img compare -f raw -F raw "$WORK/data.raw" "$URL" >/dev/null || fail "qemu-img compare over iSCSI"
    qemu-io -f raw -c 'write -P 0xc3 1M 512k' -c 'write -f -P 0x3c 9M 4k' -c flush \
        -c 'read -P 0xc3 1M 512k' -c 'read -P 0x3c 9M 4k' "$URL" >"$WORK/io.out" ||
        fail "qemu-io over iSCSI"
    grep -c '^read' "$WORK/io.out" | grep -qx 2 || { cat "$WORK/io.out"; fail "qemu-io read back over iSCSI"; }
    stop_device "$SERVER_PID"
    rbd_t export rbd/img - 2>/dev/null >"$WORK/export.raw" || fail "rbd export"
    cmp -n 1M "$WORK/data.raw" "$WORK/export.raw" || fail "rbd export: the data written over iSCSI"
    head -c 512K /dev/zero | tr '\0' '\303' | cmp -n 512K -i 0:1M - "$WORK/export.raw" ||
        fail "rbd export: qemu-io's pattern"
    ok "iSCSI: qemu-img convert and compare, qemu-io patterns with FUA, all in rbd export"
else
    skip_part "qemu-img has no iscsi driver"
fi

# --- a resize while served: new connections see the new size -----------
start_device "$RBD" --image img --nbd nbd://127.0.0.1:0/
uri=$(serving_uri "$WORK/server.log" nbd://)
before=$(nbdinfo --size "$uri") || fail "nbdinfo --size before the resize"
rbd_t resize --size 48M rbd/img >/dev/null 2>&1 || fail "rbd resize"
wait_until 30 grep -q 'image rbd/img is now 48 MiB: the disk is resized' "$WORK/server.log" ||
    { cat "$WORK/server.log" >&2; fail "the resize is not taken"; }
expect_eq "$(nbdinfo --size "$uri")" $((48 << 20)) "size a new NBD connection sees"
stop_device "$SERVER_PID"
ok "a resize while served: $before bytes, then a new connection sees $((48 << 20))"

# --- a snapshot, read-only ----------------------------------------------
rbd_t snap create rbd/img@s1 >/dev/null 2>&1 || fail "rbd snap create"
rbd_t export rbd/img@s1 - 2>/dev/null >"$WORK/snap.raw" || fail "rbd export of the snapshot"
start_device "$RBD" --image img --snap s1 --nbd nbd://127.0.0.1:0/
URI=$(serving_uri "$WORK/server.log" nbd://)
nbdinfo "$URI" | grep -q 'is_read_only: true' || fail "the snapshot is served read-only"
qemu-io -f raw -c 'write 0 4k' "$URI" >/dev/null 2>&1 && fail "a write to the snapshot must fail"
qemu-img compare -f raw -F raw "$WORK/snap.raw" "$URI" >/dev/null || fail "the snapshot's data over NBD"
stop_device "$SERVER_PID"
ok "--snap: the snapshot served read-only with its data"
