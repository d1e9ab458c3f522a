#!/bin/sh
# open-iscsi with CHAP on spd-rawdisk's target: discovery and login with
# the right secret, a login with a wrong secret refused; the disk reads
# back what was written; logout. The target ends the refused login's
# connection, which the kernel logs.
# kernel log allows: detected conn error \(1020\)|Power-on or device reset occurred
. "$(dirname "$0")/../lib.sh"
need cmp

umask 077
echo "vm-initiator vm-chap-secret-01" >"$WORK/secrets"
iscsi_setup
start_device "$RAWDISK" --file "$WORK/disk.img" --size 32M \
    --chap-file "$WORK/secrets" --iscsi="$ISCSI_PORTAL"
iscsi_discover vm-initiator vm-chap-secret-01
ok "discovery with CHAP: $ISCSI_IQN"

iscsi_login vm-initiator vm-chap-secret-02 &&
    fail "login with a wrong CHAP secret must be refused"
grep -qi 'authoriz\|authent' "$WORK/login" || { cat "$WORK/login"; fail "wrong secret: not an authentication failure"; }
iscsi_disk >/dev/null && fail "a disk appeared after a refused login"
ok "login with a wrong CHAP secret refused"

iscsi_login vm-initiator vm-chap-secret-01 || { cat "$WORK/login"; fail "login with CHAP"; }
iscsi_wait_disk
head -c 1048576 /dev/urandom >"$WORK/pattern"
dd if="$WORK/pattern" of="$ISCSI_DEV" bs=1M seek=3 count=1 oflag=direct 2>/dev/null ||
    fail "write through the CHAP session"
dd if="$ISCSI_DEV" bs=1M skip=3 count=1 iflag=direct 2>/dev/null | cmp -s - "$WORK/pattern" ||
    fail "read back through the CHAP session"
ok "1 MiB written and read back through the CHAP session"
iscsi_detach
