#!/bin/sh
# The kernel's side of ublk is ready: ublk_drv is loaded and
# /dev/ublk-control exists. Spd has no ublk transport yet, so the rest
# (serving a /dev/ublkbN) is skipped.
. "$(dirname "$0")/../lib.sh"

grep -qw ublk_drv /proc/modules || fail "ublk_drv is not loaded"
[ -c /dev/ublk-control ] || fail "no /dev/ublk-control"
ok "ublk_drv loaded, /dev/ublk-control present"
skip "Spd has no ublk transport yet: the kernel side alone is checked"
