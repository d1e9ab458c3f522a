#!/bin/sh
# spd-rawdisk --tcmu-loop killed with SIGKILL, as spd/tcmu.h documents:
# the disk and backstore stay. Started again with the same name, the
# process takes the backstore over (the kernel fails what the dead one
# held with BUSY, which the SCSI layer retries) and fio's verify, running
# across the kill, passes. Killed again and not restarted, the kernel
# fails each command with an I/O error once it is older than the
# backstore's cmd_time_out (20 s): no task hangs.
# kernel log allows: I/O error|Buffer I/O error|Sense Key|Add\. Sense|CDB: |hostbyte=|critical target error|Unhandled sense code|[Cc]ommunication failure
. "$(dirname "$0")/../tcmu.sh"
need fio
at_exit tcmu_leftovers

UUID=0b0e1c2d-3e4f-4a5b-8c6d-7e8f90a1b2c3
set -- "$RAWDISK" --file "$WORK/disk.img" --size 64M --uuid "$UUID" --tcmu-loop=vmkill
tcmu_serve "$@"
dev=$TCMU_DEV
fio --name=recover --filename="$dev" --direct=1 --ioengine=libaio \
    --rw=randwrite --bs=4k --iodepth=8 --size=8M --verify=crc32c \
    --verify_fatal=1 --do_verify=1 --output="$WORK/fio" >/dev/null 2>&1 &
FIO=$!
PIDS="$FIO $PIDS"
stat=/sys/block/${dev#/dev/}/stat
wait_until 30 sh -c "[ \$(awk '{print \$5}' $stat) -gt 200 ]" || fail "fio wrote nothing"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
PIDS=$(echo "$PIDS" | sed "s/\b$SERVER_PID\b//")
ok "server killed after $(awk '{print $5}' $stat) writes"
[ -b "$dev" ] && [ -d $C/core/user_0/vmkill ] || fail "disk or backstore gone after the kill"
tcmu_serve "$@"
[ "$TCMU_DEV" = "$dev" ] || fail "the new server serves $TCMU_DEV, not $dev"
ok "a new server took the backstore over"
wait "$FIO" || { cat "$WORK/fio"; fail "fio failed across the restart"; }
PIDS=$(echo "$PIDS" | sed "s/\b$FIO\b//")
grep -q 'err= 0' "$WORK/fio" || { cat "$WORK/fio"; fail "fio reported errors"; }
ok "fio: 8 MiB of random writes verified with crc32c across the kill"

kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
PIDS=$(echo "$PIDS" | sed "s/\b$SERVER_PID\b//")
t0=$(date +%s)
status=0
timeout 120 dd if="$dev" of=/dev/null bs=4k count=1 skip=777 iflag=direct 2>"$WORK/dd" || status=$?
[ "$status" -ne 124 ] || fail "a read still waited 120 s after the server died"
[ "$status" -ne 0 ] || fail "a read succeeded with no server"
ok "no server: a read failed after $(( $(date +%s) - t0 )) s ($(cat "$WORK/dd"))"

# The next server takes over and a clean stop removes everything.
tcmu_serve "$@"
stop_device "$SERVER_PID"
[ ! -e "$dev" ] && [ ! -e $C/core/user_0/vmkill ] || fail "disk or backstore left after the stop"
ok "taken over once more and stopped: nothing left"
