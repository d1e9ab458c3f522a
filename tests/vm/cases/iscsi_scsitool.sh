#!/bin/sh
# spd-scsitool through SG_IO on the kernel's SCSI disk of an iSCSI login
# (spd-rawdisk behind open-iscsi): INQUIRY, block limits and capacity
# decoded; a write read back and found in the image; UNMAP seen by GET LBA
# STATUS; a read past the end answered CHECK CONDITION with the sense
# decoded, through /dev/sdX and through its /dev/sgN.
# kernel log allows: Power-on or device reset occurred
. "$(dirname "$0")/../lib.sh"
need python3
TOOL=$BUILD/tools/scsitool/spd-scsitool
iscsi_attach --file "$WORK/disk.img" --size 64M
dev=$ISCSI_DEV
sg=/dev/$(ls "/sys/block/$(basename "$dev")/device/scsi_generic")
[ -c "$sg" ] || fail "no SCSI generic node for $dev"

json() {   # FILE EXPR: a python expression over j, FILE's JSON, is true
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($2) else 1)" "$1" ||
        { cat "$1"; fail "JSON: $2"; }
}
for node in "$dev" "$sg"; do
    "$TOOL" --json "$node" inquiry >"$WORK/inq" || fail "inquiry through $node"
    json "$WORK/inq" 'j["product"].startswith("Spd disk")'
    "$TOOL" --json "$node" capacity16 >"$WORK/cap" || fail "capacity16 through $node"
    json "$WORK/cap" 'j["blocks"] == 131072 and j["block_length"] == 512'
    "$TOOL" "$node" vpd b0 >"$WORK/bl" || fail "vpd b0 through $node"
    grep -qi 'unmap' "$WORK/bl" || { cat "$WORK/bl"; fail "vpd b0: no unmap limits"; }
done
ok "INQUIRY, READ CAPACITY(16) and the block limits page through $dev and $sg"

head -c 65536 /dev/urandom >"$WORK/data"
"$TOOL" "$sg" write 2048 --input "$WORK/data" --fua >/dev/null || fail "write through $sg"
"$TOOL" "$sg" read 2048 128 --output "$WORK/back" >/dev/null || fail "read through $sg"
cmp -s "$WORK/data" "$WORK/back" || fail "the blocks read back differ"
dd if="$WORK/disk.img" bs=512 skip=2048 count=128 2>/dev/null | cmp -s - "$WORK/data" ||
    fail "the blocks written are not in the image"
ok "64 KiB written with FUA through $sg read back, and are in the image"

"$TOOL" "$sg" unmap 2048 128 >/dev/null || fail "unmap through $sg"
"$TOOL" --json "$sg" lba-status 2048 >"$WORK/status" || fail "lba-status through $sg"
json "$WORK/status" '"deallocated" in json.dumps(j).lower()'
ok "UNMAP through $sg: GET LBA STATUS says deallocated"

status=0
"$TOOL" "$sg" read 131072 1 >"$WORK/oor" 2>&1 || status=$?
expect_eq "$status" 1 "exit status of a read past the end"
grep -q "ILLEGAL REQUEST" "$WORK/oor" && grep -qi "LOGICAL BLOCK ADDRESS OUT OF RANGE" "$WORK/oor" ||
    { cat "$WORK/oor"; fail "no decoded sense for a read past the end"; }
ok "a read past the end: exit 1, ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE"
iscsi_detach
