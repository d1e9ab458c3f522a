#!/bin/sh
# The ublk options of the device command line: values are checked before
# anything is served, and a kernel without ublk (no /dev/ublk-control, as
# on machines without ublk_drv) ends the program with one line and exit 2.
# Serving /dev/ublkbN itself is tested in a guest (tests/vm/cases/ublk_*).
. "$(dirname "$0")/../lib.sh"

refused() {  # words args...: spd-ramdisk --size 1M ARGS refused, saying WORDS
    words=$1
    shift
    expect_refused "$RAMDISK" "$words" --size 1M "$@"
}

refused "need a ublk export" --queues 2 --nbd nbd://127.0.0.1:0/
refused "need a ublk export" --queue-depth 8 --check
refused "need a ublk export" --ublk-recovery --check
refused "--queues 0: not a number from 1 to 64" --queues 0 --ublk
refused "--queues 65" --queues 65 --ublk
refused "--queue-depth 4097" --queue-depth 4097 --ublk
refused "--queue-depth x" --queue-depth x --ublk
refused "--ublk -1" --ublk=-1
ok "--queues, --queue-depth and --ublk-recovery without --ublk, bad numbers: exit 2"

if [ -e /dev/ublk-control ]; then
    skip_part "this kernel has ublk: the message for a missing driver is not seen here"
else
    refused "no /dev/ublk-control: this kernel has no ublk driver" --ublk
    refused "no /dev/ublk-control" --ublk=3 --queues 2 --queue-depth 32
    ok "no ublk driver: one line, exit 2"
fi
