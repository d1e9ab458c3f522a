#!/bin/sh
# spd-ramdisk run as nobody serves /dev/ublkb0 (UBLK_F_UNPRIVILEGED_DEV):
# with the access docs/ublk.md's udev rule gives a group (the guest has no
# udev: a loop here does the rule's work as nodes appear), ext4 and fio
# verify pass, and a clean stop removes the disk. Without that access, the
# same program fails with one clear line and exit status 2.
. "$(dirname "$0")/../ublk.sh"
need setpriv mkfs.ext4 e2fsck fio
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
chmod 1777 "$WORK"

# No access to /dev/ublk-control: refused, nothing added.
chmod 600 /dev/ublk-control
status=0
$NOBODY "$RAMDISK" --size 64M --ublk=0 >"$WORK/refused.log" 2>&1 || status=$?
expect_eq "$status" 2 "exit status without access to /dev/ublk-control"
grep -q "not permitted" "$WORK/refused.log" ||
    { cat "$WORK/refused.log"; fail "no clear error without access"; }
[ ! -e "$UBLK_DEV" ] || fail "a disk appeared although adding was refused"
ok "without access: $(head -1 "$WORK/refused.log")"

# The udev rule's work: the control node and each new device's nodes to
# group nogroup (65534), mode 0660.
chgrp 65534 /dev/ublk-control
chmod 660 /dev/ublk-control
(
    while :; do
        for n in /dev/ublkc* /dev/ublkb*; do
            [ -e "$n" ] && chgrp 65534 "$n" && chmod 660 "$n"
        done 2>/dev/null
        sleep 0.05
    done
) &
RULES_PID=$!
at_exit "kill $RULES_PID"

ublk_serve $NOBODY "$RAMDISK" --size 64M
expect_eq "$(stat -c %u "/proc/$SERVER_PID")" 65534 "the server's user"
ext4_roundtrip "$UBLK_DEV"
fio_verify "$UBLK_DEV"
ublk_stop
