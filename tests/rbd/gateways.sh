#!/bin/sh
# Two spd-rbd gateways on one image: the same identity (serial number) on
# both, a write through one read back through the other, both ways; a
# persistent reservation taken through one enforced by the other, and
# kept in the image across a restart; and the OSD killed with SIGKILL
# under fio's write load and started again: requests wait, fio sees no
# error and its verify passes.
. "$(dirname "$0")/../lib.sh"
RBD=$BUILD/devices/spd-rbd
[ -x "$RBD" ] || skip "spd-rbd is not built (librbd-dev missing)"
need qemu-io fio iscsi-inq
TOOL=$BUILD/tools/scsitool/spd-scsitool
[ -x "$TOOL" ] || skip "spd-scsitool is not built (libiscsi-dev missing)"
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"
. "$(dirname "$0")/cluster.sh"
cluster_start "$WORK/ceph"
rbd_t create --size 64M rbd/img || fail "rbd create"

# Each gateway logs to its own file (start_device writes server.log).
# Gateway A is target port group 1 (active/optimized), B group 2 (active/
# non-optimized): two target ports, as an initiator's multipath sees them.
gateway() {   # NAME: start one, set URI_NAME and ISCSI_NAME, PID_NAME
    start_device "$RBD" --image img --nbd nbd://127.0.0.1:0/ --iscsi 127.0.0.1:0 \
        --port-group "$(case $1 in A) echo 1 ;; B) echo 2 ;; esac)" --alua 1:ao,2:ano
    mv "$WORK/server.log" "$WORK/$1.log"
    eval "PID_$1=\$SERVER_PID URI_$1=\$(serving_uri \"\$WORK/$1.log\" nbd://) \
          ISCSI_$1=\$(serving_uri \"\$WORK/$1.log\" iscsi://)"
}
gateway A
gateway B
serial() { iscsi-inq -e 1 -c 128 "$1" | grep "Unit Serial Number"; }
sa=$(serial "$ISCSI_A") || fail "VPD 80h through gateway A"
expect_eq "$(serial "$ISCSI_B")" "$sa" "the unit serial number of gateway B"
ok "two gateways on one image report one serial number ($sa)"

qemu-io -f raw -c 'write -P 0x11 0 1M' -c 'write -P 0x22 5M 4k' "$URI_A" >/dev/null ||
    fail "write through gateway A"
qemu-io -f raw -c 'read -P 0x11 0 1M' -c 'read -P 0x22 5M 4k' "$URI_B" |
    grep -c '^read' | grep -qx 2 || fail "gateway B reads what gateway A wrote"
qemu-io -f raw -c 'write -P 0x33 0 64k' -c 'write -P 0x44 7M 1M' "$URI_B" >/dev/null ||
    fail "write through gateway B"
qemu-io -f raw -c 'read -P 0x33 0 64k' -c 'read -P 0x11 64k 960k' -c 'read -P 0x44 7M 1M' \
    "$URI_A" | grep -c '^read' | grep -qx 3 || fail "gateway A reads what gateway B wrote"
ok "a write through one gateway is read back through the other, both ways"

# Alternating writers of one block through the two gateways: the last
# write wins everywhere.
for i in 1 2 3 4 5 6; do
    if [ $((i % 2)) -eq 1 ]; then u=$URI_A; else u=$URI_B; fi
    qemu-io -f raw -c "write -P $i 12M 4k" "$u" >/dev/null || fail "write $i"
done
for u in "$URI_A" "$URI_B"; do
    qemu-io -f raw -c 'read -P 6 12M 4k' "$u" | grep -q '^read' || fail "the last write seen through $u"
done
ok "alternating writes through both gateways: the last one seen through each"

# --- a persistent reservation across the gateways ------------------------
# Initiators A and B (spd-scsitool --initiator: one initiator port per
# name on every run); A's key a1, B's b2.
IQN_A=iqn.2026-11.org.spd.test:a
IQN_B=iqn.2026-11.org.spd.test:b
initiator() {   # INITIATOR URI ARGS...: spd-scsitool as that initiator
    who=$1 uri=$2
    shift 2
    "$TOOL" --initiator "$who" "$uri" "$@"
}
# With ALL_TG_PT (byte 20), as every PERSISTENT RESERVE OUT here sends it,
# a registration holds for the initiator through every gateway's port.
prout() {   # INITIATOR URI SA TYPE KEY SA_KEY: PERSISTENT RESERVE OUT
    printf "\\0\\0\\0\\0\\0\\0\\0\\$(printf %o "$5")\\0\\0\\0\\0\\0\\0\\0\\$(printf %o "$6")" >"$WORK/prout.bin"
    printf '\0\0\0\0\4\0\0\0' >>"$WORK/prout.bin"
    initiator "$1" "$2" raw "5f $3 $4 00 00 00 00 00 18 00" --out "$WORK/prout.bin"
}
head -c 4096 /dev/urandom >"$WORK/block.bin"
b_write() { initiator $IQN_B "$ISCSI_B" write 100 --input "$WORK/block.bin" >"$WORK/b.out" 2>&1; }
b_write_conflicts() {
    st=0
    b_write || st=$?
    [ "$st" -eq 1 ] && grep -q "RESERVATION CONFLICT" "$WORK/b.out"
}
reservation_on() {   # URI: READ RESERVATION shows A's key, WRITE EXCLUSIVE
    initiator $IQN_B "$1" -j raw "5e 01 00 00 00 00 00 00 20 00" --in 32 \
        >"$WORK/prin.out" || return 1
    # ADDITIONAL LENGTH 16, the key, TYPE 1 (after the generation).
    grep -q "0000001000000000000000a1000000000001" "$WORK/prin.out"
}
b_write || { cat "$WORK/b.out" >&2; fail "B's write before any reservation"; }
prout $IQN_A "$ISCSI_A" 00 00 0 161 >/dev/null || fail "A registers through gateway A"
prout $IQN_A "$ISCSI_A" 01 01 161 0 >/dev/null || fail "A reserves (WRITE EXCLUSIVE) through gateway A"
wait_until 10 b_write_conflicts ||
    { cat "$WORK/b.out" >&2; fail "B's write through gateway B while A holds the reservation"; }
initiator $IQN_B "$ISCSI_B" read 100 1 --output "$WORK/read.bin" ||
    fail "B's read through gateway B under WRITE EXCLUSIVE"
cmp -s -n "$(stat -c %s "$WORK/read.bin")" "$WORK/read.bin" "$WORK/block.bin" || fail "B reads back its earlier write"
reservation_on "$ISCSI_B" ||
    { cat "$WORK/prin.out" >&2; fail "READ RESERVATION through gateway B"; }
ok "A's reservation through gateway A: B's write through gateway B gets RESERVATION CONFLICT, its read runs, READ RESERVATION there shows A's key"

rbd_t image-meta get rbd/img spd.pr >/dev/null || fail "the reservations in the image's metadata"
stop_device "$PID_B"
gateway B
wait_until 10 b_write_conflicts ||
    { cat "$WORK/b.out" >&2; fail "B's write through gateway B after its restart"; }
reservation_on "$ISCSI_B" || fail "READ RESERVATION through gateway B after its restart"
ok "gateway B restarted: the reservation, kept in the image, still holds there"

prout $IQN_A "$ISCSI_A" 02 01 161 0 >/dev/null || fail "A releases through gateway A"
wait_until 10 b_write ||
    { cat "$WORK/b.out" >&2; fail "B's write through gateway B after A's release"; }
prout $IQN_A "$ISCSI_B" 00 00 161 0 >/dev/null || fail "A unregisters through gateway B"
ok "A releases through gateway A: B's write through gateway B runs again"

# A value in spd.pr that is not Spd's: nothing a reservation may forbid
# runs, with a clear sense (libiscsi's login stops at its TEST UNIT
# READY: exit status 3), and the gateway lives on; without it, all runs.
b_write_fails() {
    st=0
    b_write || st=$?
    [ "$st" -eq 3 ] && grep -q "HARDWARE_ERROR" "$WORK/b.out" &&
        grep -q "INTERNAL_TARGET_FAILURE" "$WORK/b.out"
}
rbd_t image-meta set rbd/img spd.pr 5370645200ff || fail "rbd image-meta set"
wait_until 10 b_write_fails ||
    { cat "$WORK/b.out" >&2; fail "B's write through gateway B with a damaged spd.pr"; }
kill -0 "$PID_B" || fail "gateway B with a damaged spd.pr"
rbd_t image-meta remove rbd/img spd.pr || fail "rbd image-meta remove"
wait_until 10 b_write ||
    { cat "$WORK/b.out" >&2; fail "B's write through gateway B once spd.pr is removed"; }
ok "a damaged spd.pr: B's commands fail with HARDWARE ERROR, INTERNAL TARGET FAILURE; removed, writes run"
stop_device "$PID_B"
stop_device "$PID_A"

# --- the OSD killed under a write load ----------------------------------
start_device "$RBD" --image img --nbd nbd://127.0.0.1:0/
URI=$(serving_uri "$WORK/server.log" nbd://)
fio --name=crash --ioengine=nbd --uri="$URI" --rw=randwrite --bs=4k \
    --iodepth=16 --size=64M --verify=crc32c --do_verify=1 --verify_fatal=1 \
    --randrepeat=0 --verify_state_save=0 >"$WORK/fio.out" 2>&1 &
FIO_PID=$!
PIDS="$FIO_PID $PIDS"
sleep 1
kill -0 "$FIO_PID" 2>/dev/null || { cat "$WORK/fio.out" >&2; fail "fio ended before the OSD was killed"; }
osd_kill
sleep 2
osd_start
status=0
wait "$FIO_PID" || status=$?
PIDS=$(echo "$PIDS" | sed "s/\b$FIO_PID\b//")
[ "$status" -eq 0 ] && grep -q 'err= 0' "$WORK/fio.out" ||
    { cat "$WORK/fio.out" >&2; fail "fio under an OSD crash (status $status)"; }
stop_device "$SERVER_PID"
ok "OSD killed with SIGKILL under fio's writes and restarted: no error, verify passed"
