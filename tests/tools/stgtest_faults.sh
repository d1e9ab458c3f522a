#!/bin/sh
# spd-stgtest against a disk that corrupts data on purpose (faulty, from
# tests/support/faulty.c): each kind of corruption must fail the run,
# name the bad block and say what went wrong; the same device without a
# fault must pass.
. "$(dirname "$0")/../lib.sh"
need python3

STGTEST=$BUILD/tools/stgtest/spd-stgtest
FAULTY=$BUILD/tests/faulty
OUT=$WORK/out.json
ERR=$WORK/err

jget() {
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(v)' "$OUT" "$1"
}

# One connection and a fixed seed: the device sees the same requests in
# the same order each time, so the outcome does not depend on timing.
RUN="--threads 1 --queue-depth 4 --seed 7 --ops 100000"

# catches MODE EXPORT VERDICT [ARG...]: faulty --fault MODE over EXPORT
# (nbd or iscsi) fails spd-stgtest (with ARGs) with VERDICT, naming the
# block on stderr.
catches() {
    mode=$1 export=$2 verdict=$3
    shift 3
    if [ "$export" = nbd ]; then
        start_device "$FAULTY" --size 16M --fault "$mode" --every 20 --nbd nbd://127.0.0.1:0
    else
        start_device "$FAULTY" --size 16M --fault "$mode" --every 5 --iscsi 127.0.0.1:0
    fi
    uri=$(serving_uri "$WORK/server.log" "$export://")
    rc=0
    "$STGTEST" --json $RUN "$@" "$uri" >"$OUT" 2>"$ERR" || rc=$?
    stop_device "$SERVER_PID"
    [ "$rc" -eq 1 ] || { cat "$ERR" "$OUT" >&2; fail "--fault $mode: exit $rc, want 1"; }
    grep -q "faulty: [1-9][0-9]* faults of kind $mode committed" "$WORK/server.log" ||
        fail "--fault $mode: the device committed no fault"
    expect_eq "$(jget failure.verdict)" "$verdict" "--fault $mode: verdict"
    lba=$(jget failure.lba)
    grep -q "^spd-stgtest: FAILED: LBA $lba: expected .*, found .*: $verdict\$" "$ERR" ||
        { cat "$ERR" >&2; fail "--fault $mode: stderr does not name LBA $lba"; }
    ok "--fault $mode over $export: $(head -1 "$ERR" | sed 's/^spd-stgtest: //')"
}

catches drop nbd "lost write"
catches misdirect nbd "misdirected write"
catches stale nbd "stale read"
catches torn nbd "torn write"
# Stamps of 4096 bytes on a disk of 512-byte blocks: a write torn inside
# a stamped block fails its checksum, and the byte where it tears is named.
catches torn nbd "torn block" --block-size 4096 --bs 4k
grep -q "holds generation [0-9]* up to byte 2048, other data after" "$ERR" ||
    { cat "$ERR" >&2; fail "torn block: the byte where it tears"; }
# Over iSCSI the device says LBPRZ: unmapped blocks must read as zeros.
catches unmap iscsi "unmapped block not zeros"

# The same device, no fault: a clean pass over both exports.
start_device "$FAULTY" --size 16M --nbd nbd://127.0.0.1:0 --iscsi 127.0.0.1:0
for export in nbd iscsi; do
    uri=$(serving_uri "$WORK/server.log" "$export://")
    "$STGTEST" --json --threads 2 --duration 2 "$uri" >"$OUT" 2>"$ERR" ||
        { cat "$ERR" >&2; fail "no fault, $export: exit $?"; }
    expect_eq "$(jget result)" pass "no fault, $export"
done
stop_device "$SERVER_PID"
ok "no fault: passes over NBD and iSCSI"
