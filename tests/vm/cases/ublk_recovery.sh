#!/bin/sh
# --ublk-recovery: spd-rawdisk is killed with SIGKILL while fio writes
# (and verifies) a file on the ext4 mounted from /dev/ublkb0. The disk
# stays, the I/O waits, the same command started again takes the device
# over, and fio finishes with every block verified; the file system sees
# no error (guest.sh fails the test on any I/O error in the kernel log)
# and e2fsck finds it clean.
. "$(dirname "$0")/../ublk.sh"
need mkfs.ext4 e2fsck fio

img=$WORK/disk.img
ublk_serve "$RAWDISK" --file "$img" --size 128M --ublk-recovery
mkfs.ext4 -q "$UBLK_DEV" || fail "mkfs.ext4"
mkdir -p "$WORK/mnt"
mount "$UBLK_DEV" "$WORK/mnt" || fail "mount"
at_exit "umount '$WORK/mnt' 2>/dev/null"

# Paced (about 10 s of writes), so that it still runs when the server is
# killed however fast the machine is.
fio --name=recover --filename="$WORK/mnt/data" --direct=1 --ioengine=libaio \
    --rw=randwrite --bs=4k --iodepth=8 --size=16M --rate_iops=400 \
    --verify=crc32c --verify_fatal=1 --do_verify=1 --output="$WORK/fio" \
    >/dev/null 2>&1 &
fio_pid=$!
sleep 3
# Should a check fail while no server runs, the disk waits for one for
# ever and so would the unmount: start one first.
at_exit 'if [ -n "$orphaned" ]; then
    "$RAWDISK" --file "$img" --ublk=0 --ublk-recovery >"$WORK/rescue.log" 2>&1 &
    PIDS="$! $PIDS"
    wait_until 30 grep -q "serving /dev/ublkb0" "$WORK/rescue.log"
fi'
orphaned=1
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
PIDS=$(echo "$PIDS" | sed "s/\b$SERVER_PID\b//")
sleep 2
[ -b "$UBLK_DEV" ] || fail "$UBLK_DEV went away with the server"
kill -0 "$fio_pid" || { cat "$WORK/fio"; fail "fio ended while no server ran"; }
ok "server killed: $UBLK_DEV stays, fio waits"

ublk_serve "$RAWDISK" --file "$img" --ublk-recovery
orphaned=""
grep -q "serving /dev/ublkb0" "$WORK/server.log" || fail "no serving line after recovery"
wait "$fio_pid" || { cat "$WORK/fio"; fail "fio failed across the restart"; }
grep -q 'err= 0' "$WORK/fio" || { cat "$WORK/fio"; fail "fio reported errors"; }
ok "a new server took the device over; fio's writes all verified"

umount "$WORK/mnt" || fail "umount"
e2fsck -fn "$UBLK_DEV" >"$WORK/fsck" 2>&1 || { cat "$WORK/fsck"; fail "e2fsck -fn"; }
ok "e2fsck -fn: clean"
ublk_stop
