#!/bin/sh
# Reservations on the TCMU disk, both ways --tcmu-reservations offers.
# lio (the default): a second tcm_loop target linked to the same
# backstore gives a second initiator and a second /dev/sdX; sg_persist
# registers a key from each, one reserves (Write Exclusive), the other's
# WRITE ends in RESERVATION CONFLICT while the holder's passes, and none
# of it reaches Spd's engine (its SCSI log). spd: Spd's engine answers
# register, reserve, read keys and read reservation on the one disk.
. "$(dirname "$0")/../tcmu.sh"
need sg_persist sg_raw
at_exit tcmu_leftovers

# The new SCSI disk since $before, if any.
new_disk() {
    for b in $(ls /sys/block); do
        echo "$before" | grep -qx "$b" || { echo "$b"; return 0; }
    done
    return 1
}

# WRITE(10) of one block at LBA 2000 through SG_IO on disk $1: sg_raw's
# report of the status in $WORK/raw.
raw_write() {
    sg_raw -s 512 -i "$WORK/block" "$1" 2a 00 00 00 07 d0 00 00 01 00 >"$WORK/raw" 2>&1
}

head -c 512 /dev/urandom >"$WORK/block"

# LIO writes its reservations' file under its db_root (pr/, which the
# program makes); the host's tree is read-only here: a db_root on tmpfs,
# set while LIO has no device. LIO's workers open the file from the
# guest's own root (the initramfs), not from this chroot: the same path
# there too.
mkdir -p /var/tmp/lio-db /proc/1/root/var/tmp/lio-db/pr ||
    fail "db_root folders"
[ "$(cat $C/dbroot)" = /var/tmp/lio-db ] || echo /var/tmp/lio-db >$C/dbroot ||
    fail "LIO's db_root to /var/tmp/lio-db"

# --- lio: two initiators ---------------------------------------------
tcmu_serve "$RAMDISK" --size 16M --tcmu-loop=vmpr --debug scsi --debug-log "$WORK/scsi.log"
dev1=$TCMU_DEV
expect_eq "$(cat $C/core/user_0/vmpr/attrib/pgr_support)" 1 "pgr_support by default"
[ -d /var/tmp/lio-db/pr ] || fail "no pr/ folder in LIO's db_root"
wwn=$C/loopback/naa.5001405abcdef012
at_exit "rm -f $wwn/tpgt_1/lun/lun_0/spd; rmdir $wwn/tpgt_1/lun/lun_0 $wwn/tpgt_1 $wwn 2>/dev/null"
before=$(ls /sys/block)
{ mkdir -p $wwn/tpgt_1 &&
  echo naa.5001405abcdef013 >$wwn/tpgt_1/nexus &&
  mkdir -p $wwn/tpgt_1/lun/lun_0 &&
  ln -s $C/core/user_0/vmpr $wwn/tpgt_1/lun/lun_0/spd; } ||
    fail "a second tcm_loop target on the backstore"
wait_until 10 new_disk >/dev/null || fail "no disk for the second tcm_loop target"
dev2=/dev/$(new_disk)
wait_until 10 test -b "$dev2" || fail "no $dev2"
ok "one backstore, two initiators: $dev1 and $dev2"

sg_persist -n --out --register --param-sark=0xaa "$dev1" || fail "register 0xaa on $dev1"
sg_persist -n --out --register --param-sark=0xbb "$dev2" || fail "register 0xbb on $dev2"
sg_persist -n --in --read-keys "$dev1" >"$WORK/keys" || fail "read keys"
grep -q '0xaa' "$WORK/keys" && grep -q '0xbb' "$WORK/keys" ||
    { cat "$WORK/keys"; fail "read keys: not both registrations"; }
sg_persist -n --out --reserve --param-rk=0xaa --prout-type=1 "$dev1" ||
    fail "reserve (Write Exclusive) from $dev1"
sg_persist -n --in --read-reservation "$dev2" >"$WORK/resv" || fail "read reservation"
grep -q 'Key=0xaa' "$WORK/resv" && grep -q 'Write Exclusive' "$WORK/resv" ||
    { cat "$WORK/resv"; fail "read reservation: not 0xaa's Write Exclusive"; }
ok "sg_persist: 0xaa and 0xbb registered, 0xaa holds Write Exclusive"

raw_write "$dev2" || true
grep -qi 'reservation conflict' "$WORK/raw" ||
    { cat "$WORK/raw"; fail "a WRITE from the other initiator passed the reservation"; }
raw_write "$dev1" || { cat "$WORK/raw"; fail "the holder's WRITE failed"; }
! grep -qi 'conflict' "$WORK/raw" || { cat "$WORK/raw"; fail "the holder's WRITE: conflict"; }
dd if="$dev2" bs=512 skip=2000 count=1 iflag=direct 2>/dev/null | cmp -s - "$WORK/block" ||
    fail "the other initiator reads not what the holder wrote"
ok "WRITE from $dev2: RESERVATION CONFLICT; from $dev1 (the holder): written, read from $dev2"

sg_persist -n --out --clear --param-rk=0xaa "$dev1" || fail "clear"
! grep -q 'PERSISTENT RESERVE' "$WORK/scsi.log" ||
    fail "with LIO's reservations a PERSISTENT RESERVE reached Spd's engine"
rm $wwn/tpgt_1/lun/lun_0/spd && rmdir $wwn/tpgt_1/lun/lun_0 $wwn/tpgt_1 $wwn ||
    fail "removing the second tcm_loop target"
stop_device "$SERVER_PID"
ok "cleared; no reservation command reached Spd's engine; stopped"

# --- spd: the engine, one nexus ---------------------------------------
: >"$WORK/scsi.log"
tcmu_serve "$RAMDISK" --size 16M --tcmu-loop=vmpr --tcmu-reservations spd \
    --debug scsi --debug-log "$WORK/scsi.log"
dev=$TCMU_DEV
expect_eq "$(cat $C/core/user_0/vmpr/attrib/pgr_support)" 0 "pgr_support with spd"
sg_persist -n --out --register --param-sark=0xcc "$dev" || fail "register 0xcc"
sg_persist -n --out --reserve --param-rk=0xcc --prout-type=1 "$dev" || fail "reserve"
sg_persist -n --in --read-keys "$dev" >"$WORK/keys" || fail "read keys"
grep -q '0xcc' "$WORK/keys" || { cat "$WORK/keys"; fail "read keys: no 0xcc"; }
sg_persist -n --in --read-reservation "$dev" >"$WORK/resv" || fail "read reservation"
grep -q 'Key=0xcc' "$WORK/resv" && grep -q 'Write Exclusive' "$WORK/resv" ||
    { cat "$WORK/resv"; fail "read reservation: not 0xcc's Write Exclusive"; }
raw_write "$dev" || { cat "$WORK/raw"; fail "the holder's WRITE failed"; }
grep -q 'PERSISTENT RESERVE OUT' "$WORK/scsi.log" &&
    grep -q 'PERSISTENT RESERVE IN' "$WORK/scsi.log" ||
    fail "with --tcmu-reservations spd the engine saw no PERSISTENT RESERVE"
sg_persist -n --out --release --param-rk=0xcc --prout-type=1 "$dev" || fail "release"
sg_persist -n --out --register --param-rk=0xcc --param-sark=0 "$dev" || fail "unregister"
sg_persist -n --in --read-keys "$dev" >"$WORK/keys" || fail "read keys"
! grep -q '0xcc' "$WORK/keys" || { cat "$WORK/keys"; fail "0xcc still registered"; }
stop_device "$SERVER_PID"
ok "--tcmu-reservations spd: Spd's engine registered, reserved, reported, released"
