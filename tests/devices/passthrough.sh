#!/bin/sh
# spd-passthrough forwarding to a file and to a loop device: bytes written
# over NBD land in the store, discard and write zeroes punch holes that read
# as zeros, the store's sector sizes become the disk's, and bad stores are
# refused.
. "$(dirname "$0")/../lib.sh"
PASSTHROUGH=$BUILD/devices/spd-passthrough
need qemu-img qemu-io nbdinfo sha256sum cmp stat

OUT=$WORK/out
ERR=$WORK/err
allocated() { echo $(( $(stat -c %b "$1") * $(stat -c %B "$1") )); }

expect_status() {   # status words args...
    want=$1 words=$2
    shift 2
    status=0
    "$PASSTHROUGH" "$@" >"$OUT" 2>"$ERR" || status=$?
    expect_eq "$status" "$want" "exit status of spd-passthrough $*"
    grep -q -- "$words" "$ERR" || { cat "$ERR" >&2; fail "spd-passthrough $*: message does not name '$words'"; }
}

# --- a file: a round trip over NBD, the bytes in the file ------------
img=$WORK/store.img
head -c 32M /dev/urandom >"$WORK/data.raw"
truncate -s 32M "$img"
start_device "$PASSTHROUGH" --file "$img" --nbd nbd://127.0.0.1:0/
URI=$(serving_uri "$WORK/server.log" nbd://)
nbdinfo --json "$URI" >"$WORK/info.json"
python3 - "$WORK/info.json" <<'PY' || fail "nbdinfo facts"
import json, sys
e = json.load(open(sys.argv[1]))["exports"][0]
assert e["export-size"] == 32 << 20, e["export-size"]
assert e["block_size_minimum"] == 512, e["block_size_minimum"]
assert e["can_trim"] and e["can_zero"] and e["can_fua"] and e["can_flush"]
PY
qemu-img convert -n -f raw -O raw "$WORK/data.raw" "$URI"
qemu-img compare -f raw -F raw "$WORK/data.raw" "$URI" >/dev/null || fail "qemu-img compare"
expect_eq "$(sha256sum <"$img")" "$(sha256sum <"$WORK/data.raw")" "the file's checksum"
ok "file store: qemu-img convert and compare over NBD, sha256 of the file equal"

# FUA writes and flush, then discard and write zeroes punch holes.
qemu-io -f raw -c 'write -f -P 0xa5 1M 1M' -c flush "$URI" >/dev/null || fail "FUA write"
head -c 1M /dev/zero | tr '\0' '\245' >"$WORK/a5.raw"
cmp -i 1M:0 -n 1M "$img" "$WORK/a5.raw" || fail "the FUA write in the file"
before=$(allocated "$img")
qemu-io -f raw -c 'discard 4M 8M' -c 'write -z -u 16M 4M' "$URI" >/dev/null || fail "discard"
after=$(allocated "$img")
[ $((before - after)) -ge $((12 << 20)) ] || fail "discard and zero did not punch 12 MiB ($before -> $after)"
qemu-io -f raw -c 'read -P 0 4M 8M' -c 'read -P 0 16M 4M' "$URI" |
    grep -c 'read' | grep -qx 2 || fail "punched ranges read zeros over NBD"
cmp -n 8M -i 4M "$img" /dev/zero || fail "the file's punched range holds zeros"
cmp -i 12M:12M -n 4M "$img" "$WORK/data.raw" || fail "data between the holes kept"
stop_device "$SERVER_PID"
ok "file store: FUA write lands, discard and write zeroes free $(( (before - after) >> 20 )) MiB that read zeros"

# --- over iSCSI, driven by spd-scsitool: WRITE(16) with FUA, UNMAP ------
TOOL=$BUILD/tools/scsitool/spd-scsitool
start_device "$PASSTHROUGH" --file "$img" --iscsi 127.0.0.1:0
URL=$(serving_uri "$WORK/server.log" iscsi://)
head -c 256K /dev/urandom >"$WORK/chunk.raw"
"$TOOL" "$URL" write 8192 --input "$WORK/chunk.raw" --fua >"$OUT" || { cat "$OUT"; fail "WRITE(16) FUA over iSCSI"; }
cmp -i 4M:0 -n 256K "$img" "$WORK/chunk.raw" || fail "the FUA write over iSCSI in the file"
before=$(allocated "$img")
"$TOOL" "$URL" unmap 8192 512 >"$OUT" || { cat "$OUT"; fail "UNMAP over iSCSI"; }
"$TOOL" "$URL" sync >"$OUT" || { cat "$OUT"; fail "SYNCHRONIZE CACHE over iSCSI"; }
[ $((before - $(allocated "$img"))) -ge $((256 << 10)) ] || fail "UNMAP punched no hole"
cmp -i 4M -n 256K "$img" /dev/zero || fail "the unmapped range reads zeros in the file"
stop_device "$SERVER_PID"
ok "iSCSI: a FUA WRITE(16) lands in the file, UNMAP punches it out again, SYNCHRONIZE CACHE"

# --- refusals ----------------------------------------------------------
expect_status 2 '--file PATH is required' --check
expect_status 1 'No such file' --file "$WORK/missing" --check
expect_status 2 'not the size given' --file "$img" --size 16M --check
expect_status 2 'neither a file nor a block device' --file "$WORK" --check
truncate -s 1000 "$WORK/odd.img"
expect_status 2 'not a whole number of blocks' --file "$WORK/odd.img" --check
start_device "$PASSTHROUGH" --file "$img" --nbd nbd://127.0.0.1:0/
expect_status 1 'in use by another process' --file "$img" --check
stop_device "$SERVER_PID"
ok "refuses a missing --file, a missing store, a wrong size, a directory, a partial block, a store in use"

# --- a loop device of 4096-byte sectors as the store ---------------------
if [ "$(id -u)" -ne 0 ] || ! command -v losetup >/dev/null; then
    skip_part "a loop device needs root and losetup"
    exit 0
fi
back=$WORK/loop.img
truncate -s 64M "$back"
LOOP=$(losetup -f --show -b 4096 "$back" 2>/dev/null) || {
    skip_part "losetup cannot attach a loop device here"; exit 0; }
at_exit "losetup -d $LOOP"
"$PASSTHROUGH" --file "$LOOP" --check >"$OUT" 2>"$ERR" || { cat "$OUT" "$ERR" >&2; fail "--check on $LOOP"; }
grep -q 'self-check: [0-9]* ok, 0 failed' "$OUT" || { cat "$OUT" >&2; fail "--check on $LOOP: a step failed"; }
grep -q 'READ CAPACITY(16): 16384 blocks x 4096 bytes' "$OUT" || { cat "$OUT" >&2; fail "4096-byte blocks from BLKSSZGET"; }
grep -q "store: $LOOP, block device; sectors: 4096 logical, 4096 physical; unmap: punch hole" "$OUT" ||
    { cat "$OUT" >&2; fail "the store's sizes and unmap reported"; }
expect_status 2 'blocks cannot be smaller than its sectors' --file "$LOOP" --block-length 512 --check
ok "loop device: --check passes with the store's 4096-byte sectors and write zeroes as unmap; 512-byte blocks refused"

head -c 64M /dev/urandom >"$WORK/loopdata.raw"
start_device "$PASSTHROUGH" --file "$LOOP" --nbd nbd://127.0.0.1:0/
URI=$(serving_uri "$WORK/server.log" nbd://)
expect_eq "$(nbdinfo --json "$URI" | python3 -c 'import json,sys; print(json.load(sys.stdin)["exports"][0]["block_size_minimum"])')" \
    4096 "NBD minimum block size"
qemu-img convert -n -f raw -O raw "$WORK/loopdata.raw" "$URI"
qemu-io -f raw -c 'discard 8M 4M' "$URI" >/dev/null || fail "discard on the loop device"
stop_device "$SERVER_PID"
dd if=/dev/zero of="$WORK/loopdata.raw" bs=1M seek=8 count=4 conv=notrunc status=none
sync
expect_eq "$(sha256sum <"$back")" "$(sha256sum <"$WORK/loopdata.raw")" "the loop's backing file"
ok "loop device: 64 MiB over NBD and a discard reach the loop's backing file (sha256 equal)"
