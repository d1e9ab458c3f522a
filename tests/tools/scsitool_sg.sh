#!/bin/sh
# spd-scsitool through SG_IO: a node that is no SCSI device is refused, and
# where the machine has a SCSI disk or generic device, INQUIRY, READ
# CAPACITY and a read of its first block (never a write) succeed.
. "$(dirname "$0")/../lib.sh"
TOOL=$BUILD/tools/scsitool/spd-scsitool
need python3

OUT=$WORK/out
ERR=$WORK/err
run() {
    want=$1
    shift
    status=0
    "$TOOL" "$@" >"$OUT" 2>"$ERR" || status=$?
    [ "$status" -eq "$want" ] || { cat "$OUT" "$ERR" >&2; fail "spd-scsitool $*: exit $status, want $want"; }
}
json() {  # python expression over j, the JSON output: must be true
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$OUT" ||
        { cat "$OUT" >&2; fail "JSON: $1"; }
}

run 2 /dev/null inquiry
grep -q 'not a SCSI device' "$ERR" || fail "/dev/null is refused as no SCSI device"
ok "/dev/null is refused: $(cat "$ERR")"
if [ -r /dev/loop0 ]; then
    run 2 /dev/loop0 inquiry
    grep -q 'not a SCSI device' "$ERR" || fail "a loop device is refused as no SCSI device"
    ok "a loop device (a block device without SCSI) is refused"
fi

dev=""
for d in /dev/sg[0-9]* /dev/sd[a-z]; do
    [ -e "$d" ] && { dev=$d; break; }
done
if [ -z "$dev" ]; then
    skip_part "SG_IO: no /dev/sgN or /dev/sdX on this machine"
else
    run 0 --json "$dev" inquiry
    json '"vendor" in j and j["status"] == "GOOD"'
    what=$(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["vendor"], j["product"])' "$OUT")
    run 0 --json "$dev" capacity
    json 'j["blocks"] > 0 and j["block_length"] >= 512'
    run 0 "$dev" read 0 1
    ok "SG_IO: INQUIRY, READ CAPACITY(10) and READ(16) of $dev ($what)"
fi
