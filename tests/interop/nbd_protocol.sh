#!/bin/sh
# NBD protocol edge cases (nbd_protocol.py) against spd-ramdisk, writable
# and write-protected.
. "$(dirname "$0")/../lib.sh"
need python3
python3 -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"

start_device "$RAMDISK" --size 64M --nbd "nbd+unix:///?socket=$WORK/sock"
python3 "$(dirname "$0")/nbd_protocol.py" "$WORK/sock" || fail "protocol checks"
stop_device "$SERVER_PID"

start_device "$RAMDISK" --size 64M --write-protect \
    --nbd "nbd+unix:///?socket=$WORK/ro.sock"
python3 "$(dirname "$0")/nbd_protocol.py" "$WORK/ro.sock" readonly ||
    fail "protocol checks, read-only"
stop_device "$SERVER_PID"
ok "NBD protocol edge cases"
