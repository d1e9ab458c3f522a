#!/bin/sh
# spdctl mount through ublk, the default where the kernel has it: the
# launcher starts spd-rawdisk on a formatted image as /dev/ublkbN (class
# mount-ublk), spdctl mounts it and the image's files show; a plain stop
# is refused while mounted; spdctl eject leaves no mount, no ublk disk and
# no process, and what was written is in the image.
. "$(dirname "$0")/../lib.sh"
need mkfs.ext4 debugfs e2fsck
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
SPDCTL=$BUILD/tools/launcher/spdctl
SPD_LAUNCHER_SOCKET=$WORK/run/launcher.sock
export SPD_LAUNCHER_SOCKET
mkdir -p "$WORK/classes" "$WORK/run"
for c in mount-ublk mount; do
    sed "s|@BINDIR@|$BUILD/devices|" "$SRC/tools/launcher/classes/$c.conf.in" \
        >"$WORK/classes/$c.conf"
done
"$BUILD/tools/launcher/spd-launcherd" --config-dir "$WORK/classes" \
    --socket "$SPD_LAUNCHER_SOCKET" --state-dir "$WORK/state" >"$WORK/launcher.log" 2>&1 &
LAUNCHER_PID=$!
at_exit "kill $LAUNCHER_PID; umount -l '$WORK/mnt' 2>/dev/null"
wait_until 30 "$SPDCTL" list >/dev/null 2>&1 ||
    { cat "$WORK/launcher.log"; fail "spd-launcherd did not start"; }
"$SPDCTL" doctor | grep -q '^ublk  *yes' || { "$SPDCTL" doctor; fail "doctor: no ublk"; }

IMG=$WORK/disk.img
truncate -s 64M "$IMG"
mkfs.ext4 -q -F "$IMG"
debugfs -w -R "write /etc/hostname before.txt" "$IMG" >/dev/null 2>&1
"$SPDCTL" mount "$IMG" --mountpoint "$WORK/mnt" >"$WORK/mount.out" ||
    { cat "$WORK/launcher.log"; fail "spdctl mount"; }
read -r dev on mp <"$WORK/mount.out"
case $dev in /dev/ublkb*) ;; *) fail "mounted through $dev, not ublk" ;; esac
cmp -s "$WORK/mnt/before.txt" /etc/hostname || fail "the image's file is not visible"
ok "spdctl mount: $dev on $mp, with the image's files"

name=$("$SPDCTL" list | awk 'NR == 2 { print $2 }')
if "$SPDCTL" stop mount-ublk "$name" 2>"$WORK/stop.err"; then
    fail "a plain stop of a mounted disk went ahead"
fi
grep -q "mounted" "$WORK/stop.err" || { cat "$WORK/stop.err"; fail "stop: no reason"; }
ok "a plain stop is refused: $(cat "$WORK/stop.err")"

head -c 3000000 /dev/urandom >"$WORK/data"
cp "$WORK/data" "$WORK/mnt/data"
"$SPDCTL" eject "$WORK/mnt" || fail "spdctl eject"
! grep -q " $WORK/mnt " /proc/self/mountinfo || fail "still mounted"
wait_until 10 test ! -e "$dev" || fail "$dev still there after eject"
expect_eq "$("$SPDCTL" list | wc -l)" 1 "lines in spdctl list after eject"
debugfs -R "dump /data $WORK/data.back" "$IMG" >/dev/null 2>&1
cmp -s "$WORK/data" "$WORK/data.back" || fail "the data written is not in the image"
e2fsck -fn "$IMG" >/dev/null 2>&1 || fail "the image does not fsck clean after eject"
ok "spdctl eject: no mount, no $dev, no instance; the data is in the image"
