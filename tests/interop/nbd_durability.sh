#!/bin/sh
# Data acknowledged after FUA or FLUSH survives kill -9 of the device: the
# rawdisk is restarted on the same file and the data is read back.
. "$(dirname "$0")/../lib.sh"
need qemu-io python3

img=$WORK/disk.img
URI="nbd+unix:///?socket=$WORK/sock"
start_device "$RAWDISK" --file "$img" --size 64M --nbd "$URI"
qemu-io -f raw -c 'write -f -P 0x42 0 1M' "$URI" >/dev/null ||
    fail "FUA write"
qemu-io -f raw -c 'write -P 0x43 1M 1M' -c 'flush' "$URI" >/dev/null ||
    fail "write + flush"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
PIDS=""
rm -f "$WORK/sock"

# The backing file holds the bytes.
python3 - "$img" <<'PY' || fail "backing file content after kill -9"
import sys
d = open(sys.argv[1], "rb").read(2 << 20)
assert d[:1 << 20] == b"\x42" * (1 << 20), "FUA data"
assert d[1 << 20:] == b"\x43" * (1 << 20), "flushed data"
PY
ok "backing file holds the acknowledged data after kill -9"

start_device "$RAWDISK" --file "$img" --nbd "$URI"
qemu-io -f raw -c 'read -P 0x42 0 1M' -c 'read -P 0x43 1M 1M' "$URI" |
    grep -c 'read 1048576/1048576' | grep -qx 2 || fail "read back after restart"
stop_device "$SERVER_PID"
ok "restarted rawdisk serves the acknowledged data"
