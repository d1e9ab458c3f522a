#!/bin/sh
# Two spd-rbd gateways on one image: the same identity (serial number) on
# both, a write through one read back through the other, both ways; and
# the OSD killed with SIGKILL under fio's write load and started again:
# requests wait, fio sees no error and its verify passes.
. "$(dirname "$0")/../lib.sh"
RBD=$BUILD/devices/spd-rbd
[ -x "$RBD" ] || skip "spd-rbd is not built (librbd-dev missing)"
need qemu-io fio iscsi-inq
fio --enghelp 2>/dev/null | grep -qw nbd || skip "fio has no nbd engine"
. "$(dirname "$0")/cluster.sh"
cluster_start "$WORK/ceph"
rbd_t create --size 64M rbd/img || fail "rbd create"

# Each gateway logs to its own file (start_device writes server.log).
gateway() {   # NAME: start one, set URI_NAME and ISCSI_NAME, PID_NAME
    start_device "$RBD" --image img --nbd nbd://127.0.0.1:0/ --iscsi 127.0.0.1:0
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
