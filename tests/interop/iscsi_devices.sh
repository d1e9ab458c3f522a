#!/bin/sh
# The device programs' --iscsi export: spd-rawdisk and spd-ramdisk as iSCSI
# disks for libiscsi's tools and qemu-img, with and without CHAP; the
# rawdisk's data lands in its file.
. "$(dirname "$0")/../lib.sh"
need iscsi-ls iscsi-inq qemu-img
qemu-img --help | grep -q '^Supported formats:.* iscsi' ||
    skip "qemu-img has no iscsi driver (install qemu-block-extra)"

# rawdisk: discovery, INQUIRY, an image through qemu-img, data in the file.
img=$WORK/disk.img
start_device "$RAWDISK" --file "$img" --size 32M --iscsi-target iqn.2026-11.org.spd:test \
    --iscsi 127.0.0.1:0
URL=$(serving_uri "$WORK/server.log" iscsi://)
expect_eq "${URL#iscsi://*/}" iqn.2026-11.org.spd:test/0 "the target in the serving line"
portal=${URL%/iqn.*}
iscsi-ls -s "$portal" | grep -q 'Target:iqn.2026-11.org.spd:test' ||
    fail "discovery lists the target"
iscsi-inq "$URL" | grep -q 'Peripheral Device Type:DIRECT_ACCESS' || fail "INQUIRY"
ok "rawdisk over iSCSI: discovery and INQUIRY"
head -c 32M /dev/urandom >"$WORK/data.raw"
qemu-img convert -n -f raw -O raw "$WORK/data.raw" "$URL" || fail "qemu-img convert to iSCSI"
qemu-img compare -f raw -F raw "$WORK/data.raw" "$URL" >/dev/null || fail "qemu-img compare"
stop_device "$SERVER_PID"
cmp "$WORK/data.raw" "$img" || fail "the rawdisk file holds what was written over iSCSI"
ok "rawdisk over iSCSI: qemu-img convert and compare, data in the file"

# ramdisk with CHAP: the right secret logs in, a wrong one does not.
printf 'alice a-secret-of-sixteen\n' >"$WORK/secrets"
chmod 600 "$WORK/secrets"
start_device "$RAMDISK" --size 16M --iscsi-target iqn.2026-11.org.spd:chap \
    --iscsi 127.0.0.1:0 --chap-file "$WORK/secrets"
URL=$(serving_uri "$WORK/server.log" iscsi://)
LIBISCSI_CHAP_USERNAME=alice LIBISCSI_CHAP_PASSWORD=a-secret-of-sixteen \
    iscsi-inq "$URL" | grep -q DIRECT_ACCESS || fail "CHAP with the right secret"
LIBISCSI_CHAP_USERNAME=alice LIBISCSI_CHAP_PASSWORD=wrong-secret-here \
    iscsi-inq "$URL" >/dev/null 2>&1 && fail "CHAP with a wrong secret must fail"
iscsi-inq "$URL" >/dev/null 2>&1 && fail "no CHAP must fail"
stop_device "$SERVER_PID"
ok "ramdisk over iSCSI with CHAP: right secret in, wrong or none out"

# A world-readable secrets file is refused with a clear message.
chmod 644 "$WORK/secrets"
"$RAMDISK" --size 16M --iscsi 127.0.0.1:0 --chap-file "$WORK/secrets" \
    2>"$WORK/err" && fail "a world-readable secrets file must be refused"
grep -q 'secrets' "$WORK/err" || grep -q 'readable' "$WORK/err" || {
    cat "$WORK/err"; fail "the refusal names the problem"; }
ok "a world-readable CHAP secrets file is refused: $(head -1 "$WORK/err")"
