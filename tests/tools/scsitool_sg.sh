#!/bin/sh
# spd-scsitool through SG_IO: a node that is no SCSI device is refused.
# SG_IO on a real SCSI disk is the VM case iscsi_scsitool (tests/vm), on
# the kernel's disk of an iSCSI login.
. "$(dirname "$0")/../lib.sh"
TOOL=$BUILD/tools/scsitool/spd-scsitool

OUT=$WORK/out
ERR=$WORK/err
run() {
    want=$1
    shift
    status=0
    "$TOOL" "$@" >"$OUT" 2>"$ERR" || status=$?
    [ "$status" -eq "$want" ] || { cat "$OUT" "$ERR" >&2; fail "spd-scsitool $*: exit $status, want $want"; }
}

run 2 /dev/null inquiry
grep -q 'not a SCSI device' "$ERR" || fail "/dev/null is refused as no SCSI device"
ok "/dev/null is refused: $(cat "$ERR")"
if [ -r /dev/loop0 ]; then
    run 2 /dev/loop0 inquiry
    grep -q 'not a SCSI device' "$ERR" || fail "a loop device is refused as no SCSI device"
    ok "a loop device (a block device without SCSI) is refused"
fi
