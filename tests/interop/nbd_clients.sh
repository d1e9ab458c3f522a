#!/bin/sh
# Real NBD clients against spd-ramdisk over TCP and a Unix socket: qemu-img,
# qemu-io, nbdinfo, nbdcopy.
. "$(dirname "$0")/../lib.sh"
need qemu-img qemu-io nbdinfo nbdcopy python3 sha256sum cmp

start_device "$RAMDISK" --size 64M \
    --nbd "nbd://127.0.0.1:0/disk" \
    --nbd "nbd+unix:///disk?socket=$WORK/sock"
TCP=$(serving_uri "$WORK/server.log" nbd://)
expect_eq "${TCP##*/}" disk "the export name in the serving line"
UNIX="nbd+unix:///disk?socket=$WORK/sock"

# nbdinfo: size, flags, block sizes, the export list.
nbdinfo --json "$UNIX" >"$WORK/info.json"
python3 - "$WORK/info.json" <<'PY' || fail "nbdinfo facts"
import json, sys
info = json.load(open(sys.argv[1]))
e = info["exports"][0]
assert e["export-size"] == 64 * 1024 * 1024, e["export-size"]
assert e["block_size_minimum"] == 512 and e["block_size_preferred"] == 4096
assert e["block_size_maximum"] == 1024 * 1024
assert e["can_trim"] and e["can_zero"] and e["can_fua"] and e["can_flush"]
assert e["can_multi_conn"] and not e["is_read_only"] and not e["is_rotational"]
assert "base:allocation" in e["contexts"]
PY
ok "nbdinfo: size, flags, block sizes, base:allocation"
nbdinfo --list "$TCP" | grep -q 'export="disk"' || fail "nbdinfo --list"
ok "nbdinfo --list over TCP"

# qemu-img: info, convert in and out, compare.
head -c 48M /dev/urandom >"$WORK/image.raw"
qemu-img info "$TCP" | grep -q 'virtual size: 64 MiB' || fail "qemu-img info"
qemu-img convert -n -f raw -O raw "$WORK/image.raw" "$TCP"
qemu-img compare -f raw -F raw "$WORK/image.raw" "$UNIX" >/dev/null ||
    fail "qemu-img compare after convert"
cp "$WORK/image.raw" "$WORK/other.raw"
printf 'x' | dd of="$WORK/other.raw" bs=1 seek=1000 conv=notrunc 2>/dev/null
qemu-img compare -f raw -F raw "$WORK/other.raw" "$UNIX" >/dev/null 2>&1 &&
    fail "qemu-img compare must see one differing byte"
qemu-img convert -f raw -O raw "$UNIX" "$WORK/back.raw"
head -c 48M "$WORK/back.raw" | cmp - "$WORK/image.raw" || fail "qemu-img round trip"
tail -c 16M "$WORK/back.raw" | cmp -n 16777216 - /dev/zero || fail "unwritten tail is zeros"
ok "qemu-img convert in and out, TCP and Unix socket"

# qemu-io: patterns, discard, flush.
qemu-io -f raw -c 'write -P 0x5c 1M 2M' -c 'flush' "$TCP" >/dev/null
qemu-io -f raw -c 'read -P 0x5c 1M 2M' "$UNIX" | grep -q 'read 2097152/2097152' ||
    fail "qemu-io pattern read"
qemu-io -f raw -c 'discard 1M 1M' "$UNIX" >/dev/null
qemu-io -f raw -c 'read -P 0 1M 1M' -c 'read -P 0x5c 2M 1M' "$TCP" |
    grep -c 'read 1048576/1048576' | grep -qx 2 || fail "discard reads zeros, rest kept"
qemu-io -f raw -c 'write -z 3M 64k' -c 'read -P 0 3M 64k' "$TCP" |
    grep -q 'read 65536/65536' || fail "qemu-io write zeroes"
if qemu-io -f raw -c 'read -P 0x5c 1M 1M' "$TCP" 2>&1 | grep -q 'Pattern verification failed'; then
    ok "qemu-io detects a wrong pattern (the check can fail)"
else
    fail "qemu-io pattern check does not fail on zeros"
fi
ok "qemu-io write/read -P, discard, write -z, flush"

# nbdcopy: a random image through and back, checksums compared.
head -c 64M /dev/urandom >"$WORK/full.raw"
nbdcopy "$WORK/full.raw" "$TCP"
nbdcopy "$UNIX" "$WORK/copy.raw"
expect_eq "$(sha256sum <"$WORK/copy.raw")" "$(sha256sum <"$WORK/full.raw")" "nbdcopy checksum"
ok "nbdcopy round trip, sha256 equal"

# nbdinfo --map shows holes after a discard.
qemu-io -f raw -c 'discard 0 8M' "$TCP" >/dev/null
nbdinfo --map "$UNIX" | awk '$1 == 0 { print $2, $3 }' | grep -q '^8388608 3' ||
    fail "nbdinfo --map: first 8 MiB a hole ($(nbdinfo --map "$UNIX" | head -3))"
ok "nbdinfo --map shows the discarded range as a hole"

stop_device "$SERVER_PID"
ok "server stopped cleanly"
