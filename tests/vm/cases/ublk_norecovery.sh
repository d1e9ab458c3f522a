#!/bin/sh
# Without --ublk-recovery, as documented in spd/ublk.h: when the server is
# killed with SIGKILL, the kernel fails the I/O in flight and after it
# with I/O errors (fio ends, nothing hangs) and removes /dev/ublkb0; a new
# server with the same id deletes the dead device and serves afresh.
# kernel log allows: I/O error|Buffer I/O error
. "$(dirname "$0")/../ublk.sh"
need fio

ublk_serve "$RAMDISK" --size 64M
timeout 120 fio --name=die --filename="$UBLK_DEV" --direct=1 --ioengine=libaio \
    --rw=randread --bs=4k --iodepth=8 --time_based --runtime=100 \
    --output="$WORK/fio" >/dev/null 2>&1 &
fio_pid=$!
sleep 3
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
PIDS=$(echo "$PIDS" | sed "s/\b$SERVER_PID\b//")
status=0
wait "$fio_pid" || status=$?
[ "$status" -ne 124 ] || fail "fio still waited 120 s after the server died"
[ "$status" -ne 0 ] || fail "fio saw no error although the server died"
wait_until 30 test ! -e "$UBLK_DEV" || fail "$UBLK_DEV stays after the server died"
ok "server killed: fio failed with I/O errors (status $status), $UBLK_DEV removed"

ublk_serve "$RAMDISK" --size 64M
dd if="$UBLK_DEV" of=/dev/null bs=1M count=8 iflag=direct 2>/dev/null || fail "read the new disk"
ublk_stop
ok "a new server with the same id serves /dev/ublkb0 again"
