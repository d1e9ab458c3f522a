#!/bin/sh
# Real iSCSI initiators against iscsi_serve: libiscsi's tools (discovery,
# INQUIRY, READ CAPACITY), qemu-img and qemu-io through iscsi:// URLs
# (qemu-block-extra), several LUNs on one target, and commands completing
# on dispatcher threads instead of inline.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/iscsi_lib.sh"
need iscsi-ls iscsi-inq iscsi-readcapacity16 qemu-img qemu-io cmp
qemu-img --help | grep -q '^Supported formats:.* iscsi' ||
    skip "qemu-img has no iscsi driver (install qemu-block-extra)"

start_iscsi 64 512 --luns 3
port=$ISCSI_PORT
URL=$(iscsi_url "$port")

# Discovery: SendTargets, then each LUN's type and size.
iscsi-ls -s "iscsi://127.0.0.1:$port" >"$WORK/ls.txt"
grep -q "Target:$IQN Portal:127.0.0.1:$port,1" "$WORK/ls.txt" ||
    { cat "$WORK/ls.txt"; fail "iscsi-ls: target and portal"; }
[ "$(grep -c 'Type:DIRECT_ACCESS' "$WORK/ls.txt")" -eq 3 ] ||
    { cat "$WORK/ls.txt"; fail "iscsi-ls: three LUNs"; }
ok "iscsi-ls -s: SendTargets and REPORT LUNS with three LUNs"

iscsi-inq "$URL" >"$WORK/inq.txt"
grep -q 'Peripheral Device Type:DIRECT_ACCESS' "$WORK/inq.txt" &&
    grep -q 'Product:Spd disk' "$WORK/inq.txt" || fail "iscsi-inq: standard data"
iscsi-inq -e 1 -c 128 "$URL" | grep -q 'Unit Serial Number' ||
    fail "iscsi-inq: VPD 80h"
ok "iscsi-inq: standard INQUIRY and VPD"

iscsi-readcapacity16 "$URL" >"$WORK/cap.txt"
grep -q 'Total size:67108864' "$WORK/cap.txt" &&
    grep -q 'LOGICAL BLOCK LENGTH IN BYTES:512' "$WORK/cap.txt" ||
    { cat "$WORK/cap.txt"; fail "iscsi-readcapacity16"; }
ok "iscsi-readcapacity16: 64 MiB of 512-byte blocks"

# qemu-img: convert in and out, compare, on LUN 0 and LUN 2.
head -c 40M /dev/urandom >"$WORK/image.raw"
for lun in 0 2; do
    u=$(iscsi_url "$port" $lun)
    qemu-img info "$u" | grep -q 'virtual size: 64 MiB' || fail "qemu-img info LUN $lun"
    qemu-img convert -n -f raw -O raw "$WORK/image.raw" "$u"
    qemu-img compare -q -f raw -F raw "$WORK/image.raw" "$u" 2>/dev/null ||
        fail "qemu-img compare LUN $lun"
done
# LUN 1 was not written: still zeros.
qemu-img convert -f raw -O raw "$(iscsi_url "$port" 1)" "$WORK/lun1.raw"
cmp -n 67108864 "$WORK/lun1.raw" /dev/zero || fail "LUN 1 must be untouched"
cp "$WORK/image.raw" "$WORK/other.raw"
printf 'x' | dd of="$WORK/other.raw" bs=1 seek=77777 conv=notrunc 2>/dev/null
qemu-img compare -q -f raw -F raw "$WORK/other.raw" "$URL" 2>/dev/null &&
    fail "qemu-img compare must see one differing byte"
qemu-img convert -f raw -O raw "$URL" "$WORK/back.raw"
head -c 40M "$WORK/back.raw" | cmp - "$WORK/image.raw" || fail "round trip"
ok "qemu-img convert and compare through iscsi:// (LUNs 0, 1, 2)"

# qemu-io: patterns at odd offsets, discard, write zeroes, flush.
qemu-io -f raw -c 'write -P 0xa5 4095k 3M' -c 'flush' "$URL" >/dev/null
qemu-io -f raw -c 'read -P 0xa5 4095k 3M' "$URL" | grep -q 'read 3145728/3145728' ||
    fail "qemu-io pattern read"
qemu-io -f raw -c 'discard 4M 1M' -c 'read -P 0 4M 1M' "$URL" |
    grep -q 'read 1048576/1048576' || fail "qemu-io discard reads zeros"
qemu-io -f raw -c 'write -z 8M 64k' -c 'read -P 0 8M 64k' "$URL" |
    grep -q 'read 65536/65536' || fail "qemu-io write zeroes"
if qemu-io -f raw -c 'read -P 0xa5 4M 1M' "$URL" 2>&1 | grep -q 'Pattern verification failed'; then
    ok "qemu-io detects a wrong pattern (the check can fail)"
else
    fail "qemu-io pattern check does not fail on zeros"
fi
ok "qemu-io: write/read -P, discard, write -z, flush"
stop_iscsi

# 4096-byte blocks, commands completing on dispatcher threads. Without
# thin provisioning: qemu 7.2 then skips GET LBA STATUS, which the engine
# does not implement, and whose failure makes qemu-img abort (an assertion
# in block/iscsi.c) on 4096-byte LUNs.
start_iscsi 64 4096 --threads 2 --no-unmap
port=$ISCSI_PORT
URL=$(iscsi_url "$port")
iscsi-readcapacity16 "$URL" | grep -q 'LOGICAL BLOCK LENGTH IN BYTES:4096' ||
    fail "4096-byte blocks"
qemu-img convert -n -f raw -O raw "$WORK/image.raw" "$URL"
qemu-img compare -q -f raw -F raw "$WORK/image.raw" "$URL" 2>/dev/null ||
    fail "qemu-img compare, 4096-byte blocks, threads"
ok "4096-byte blocks with completions on dispatcher threads"
stop_iscsi
