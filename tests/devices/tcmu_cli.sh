#!/bin/sh
# The TCMU options of the device command line: names are checked before
# anything is served, and a kernel without TCMU or tcm_loop (as on
# machines without target_core_user) ends the program with one line and
# exit 2. Serving the backstore and /dev/sdX is tested in a guest
# (tests/vm/cases/tcmu_*).
. "$(dirname "$0")/../lib.sh"

refused() {  # words args...: spd-ramdisk --size 1M ARGS refused, saying WORDS
    words=$1
    shift
    expect_refused "$RAMDISK" "$words" --size 1M "$@"
}

refused "is no TCMU backstore name" --tcmu 'a b'
refused "is no TCMU backstore name" --tcmu-loop=a,b
refused "is no TCMU backstore name" --tcmu .hidden
refused "is no TCMU backstore name" --tcmu "$(printf '%065d' 0)"
ok "bad backstore names: exit 2"

refused "neither lio nor spd" --tcmu-reservations both --tcmu disk1
refused "neither lio nor spd" --tcmu-reservations '' --tcmu-loop
refused "needs a TCMU export" --tcmu-reservations spd --nbd nbd://127.0.0.1:0/
ok "--tcmu-reservations: lio or spd, and only with a TCMU export: exit 2"

if [ "$(id -u)" -ne 0 ]; then
    refused "needs root" --tcmu-loop
    ok "not root: one line, exit 2"
elif [ -d /sys/module/target_core_user ] && [ -d /sys/module/tcm_loop ]; then
    skip_part "this kernel has TCMU and tcm_loop: the message for missing modules is not seen here"
else
    refused "modprobe target_core_user" --tcmu-loop
    refused "modprobe" --tcmu-loop=disk1 --nbd nbd://127.0.0.1:0/
    ok "no TCMU or tcm_loop: one line, exit 2"
fi
