#!/bin/sh
# The target dies under I/O: fio writes with crc32c checksums to the
# kernel's iSCSI disk, spd-rawdisk is killed with SIGKILL mid-run and
# started again on the same file; open-iscsi logs in again, the kernel
# retries what was in flight, and fio's verify of every block passes. The
# kernel may log the lost connection, and nothing worse.
# kernel log allows: detected conn error \(1020\)|Power-on or device reset occurred
. "$(dirname "$0")/../lib.sh"
need fio

UUID=6a1b8f0c-2f4e-4d3a-9c1e-5b7d2e8f0a11
set -- --file "$WORK/disk.img" --size 64M --uuid "$UUID"
iscsi_attach "$@"
fio --name=recover --filename="$ISCSI_DEV" --direct=1 --ioengine=libaio \
    --rw=randwrite --bs=4k --iodepth=8 --size=8M --verify=crc32c \
    --verify_fatal=1 --do_verify=1 --output="$WORK/fio" >/dev/null 2>&1 &
FIO=$!
PIDS="$FIO $PIDS"
# Kill once fio has written something, and well before it is done.
stat=/sys/block/${ISCSI_DEV#/dev/}/stat
wait_until 30 sh -c "[ \$(awk '{print \$5}' $stat) -gt 200 ]" ||
    fail "fio wrote nothing"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
PIDS=$(echo "$PIDS" | sed "s/\b$SERVER_PID\b//")
ok "target killed after $(awk '{print $5}' $stat) writes"
sleep 2
start_device "$RAWDISK" "$@" --iscsi="$ISCSI_PORTAL"
ok "target started again"
wait "$FIO" || { cat "$WORK/fio"; fail "fio failed across the restart"; }
PIDS=$(echo "$PIDS" | sed "s/\b$FIO\b//")
grep -q 'err= 0' "$WORK/fio" || { cat "$WORK/fio"; fail "fio reported errors"; }
ok "fio: 8 MiB of random writes verified with crc32c across the restart"
iscsi_detach
