#!/bin/sh
# spdctl mount and eject through FUSE and the loop device: a formatted
# image is mounted and shows its files; a plain stop is refused while it is
# mounted; files written there are in the image after spdctl eject, which
# leaves no mount, loop device, FUSE file or process behind. Then a
# partitioned image (its first partition is mounted), read-only mounts,
# a forced stop of a mounted disk, and what a killed launcher leaves.
. "$(dirname "$0")/../lib.sh"
need mkfs.ext4 debugfs e2fsck losetup mount umount sfdisk python3
need_root "losetup and mount"
[ -e /dev/fuse ] || skip "no /dev/fuse"
[ -e /dev/loop-control ] || skip "no loop devices"
. "$(dirname "$0")/common.sh"

start_launcher
ctl doctor >"$WORK/doctor.out" || { cat "$WORK/doctor.out"; fail "doctor: no FUSE and loop"; }
grep -q '^fuse  *yes' "$WORK/doctor.out" || fail "doctor: fuse"
grep -q '^loop  *yes' "$WORK/doctor.out" || fail "doctor: loop"
ctl --json doctor | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["fuse"]["available"] and d["loop"]["available"], d
assert set(d) == {"ublk", "fuse", "loop", "nbd", "iscsi"}, d
' || fail "doctor --json"
ok "spdctl doctor finds FUSE and loop"

IMG=$WORK/disk.img
MNT=$WORK/mnt
truncate -s 64M "$IMG"
mkfs.ext4 -q -F "$IMG"
debugfs -w -R "write /etc/hostname before.txt" "$IMG" >/dev/null 2>&1

no_leftovers() {   # nothing of image $1 left: mounts, loops, FUSE, process
    ! grep -q " $MNT " /proc/self/mountinfo || fail "$MNT is still mounted"
    ! grep -q "$WORK/run/" /proc/self/mountinfo || fail "a FUSE file is still mounted"
    ! losetup -a | grep -q "$WORK" || fail "a loop device is still attached: $(losetup -a)"
    [ -z "$(ls "$WORK/run" | grep '\.disk$')" ] || fail "a FUSE file is left in $WORK/run"
    expect_eq "$(ctl list | wc -l)" 1 "lines in spdctl list"
}

status=0
ctl mount "$IMG" --via nbd --mountpoint "$MNT" 2>/dev/null || status=$?
expect_eq "$status" 2 "exit status of mount --via nbd (not supported yet)"
ctl mount "$IMG" --via fuse --mountpoint "$MNT" >"$WORK/mount.out" || fail "spdctl mount"
read -r dev on mp <"$WORK/mount.out"
expect_eq "$mp" "$MNT" "mount point printed"
grep -q " $MNT " /proc/self/mountinfo || fail "$MNT is not mounted"
cmp -s "$MNT/before.txt" /etc/hostname || fail "the image's file is not visible at $MNT"
ok "spdctl mount: $dev on $MNT, with the image's files"

name=$(ctl --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
pid=$(ctl info mount "$name" | awk '$1 == "pid" { print $2 }')
ctl info mount "$name" | grep -q "^device  *$dev" || fail "info: no device $dev"
if ctl stop mount "$name" 2>"$WORK/stop.err"; then fail "a plain stop of a mounted disk went ahead"; fi
grep -q "in use: $dev is mounted on $MNT" "$WORK/stop.err" || { cat "$WORK/stop.err"; fail "stop: no reason"; }
grep -q " $MNT " /proc/self/mountinfo || fail "the refused stop unmounted $MNT"
ok "a plain stop is refused while mounted, and says by what"

head -c 3000000 /dev/urandom >"$WORK/data"
cp "$WORK/data" "$MNT/data"
mkdir "$MNT/dir" && echo written >"$MNT/dir/note"
ctl eject "$MNT" >/dev/null || fail "spdctl eject $MNT"
no_leftovers
wait_until 10 gone "$pid" || fail "the device $pid is still running"
debugfs -R "dump /data $WORK/data.back" "$IMG" >/dev/null 2>&1
cmp -s "$WORK/data" "$WORK/data.back" || fail "the data written while mounted is not in the image"
expect_eq "$(debugfs -R 'cat /dir/note' "$IMG" 2>/dev/null)" written "/dir/note in the image"
e2fsck -fn "$IMG" >/dev/null 2>&1 || fail "the image does not fsck clean after eject"
ok "spdctl eject: nothing left behind; the data written is in the image, which fscks clean"

# By image path, and read-only: writes are refused, the image unchanged.
ctl mount --read-only "$IMG" --mountpoint "$MNT" >/dev/null || fail "mount --read-only"
if touch "$MNT/x" 2>/dev/null; then fail "a read-only mount took a write"; fi
ctl eject "$IMG" >/dev/null || fail "spdctl eject $IMG"
no_leftovers
ok "mount --read-only refuses writes; eject by image path"

# A partitioned image: its first partition is what gets mounted (a
# partition device where the kernel scans the loop device's partitions,
# else the loop device narrowed to the partition).
PIMG=$WORK/parted.img
mkdir "$WORK/tree" && echo inside >"$WORK/tree/part.txt"
truncate -s 64M "$PIMG"
echo 'start=2048, type=83' | sfdisk -q "$PIMG"
mkfs.ext4 -q -F -d "$WORK/tree" -E offset=1048576 "$PIMG" 63M
ctl mount "$PIMG" --mountpoint "$MNT" >"$WORK/mount.out" || fail "mount partitioned"
read -r dev on mp <"$WORK/mount.out"
expect_eq "$(cat "$MNT/part.txt")" inside "the partition's file"
echo x >"$MNT/x"
ok "a partitioned image: its first partition is mounted ($dev)"

# A forced stop unmounts and detaches, then stops.
name=$(ctl --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
ctl stop --force mount "$name" || fail "stop --force"
no_leftovers
ok "stop --force of a mounted disk: unmounted, detached, stopped"

# Nothing to mount: refused, and nothing left behind.
truncate -s 16M "$WORK/blank.img"
if ctl mount "$WORK/blank.img" --mountpoint "$MNT" 2>/dev/null; then fail "mounted a blank image"; fi
no_leftovers
ctl mount --no-mount "$WORK/blank.img" >"$WORK/mount.out" || fail "mount --no-mount"
dev=$(cat "$WORK/mount.out")
[ -b "$dev" ] || fail "--no-mount: $dev is not a block device"
name=$(ctl --json list | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
exec 3<"$dev"
if ctl stop mount "$name" 2>"$WORK/stop.err"; then fail "stop went ahead while $dev was open"; fi
grep -q "$dev is open in pid $$ " "$WORK/stop.err" || { cat "$WORK/stop.err"; fail "stop: not the process that holds $dev"; }
exec 3<&-
if ctl stop mount "$name" 2>"$WORK/stop.err"; then fail "stop went ahead while $dev was attached"; fi
grep -q "$dev is attached to " "$WORK/stop.err" || { cat "$WORK/stop.err"; fail "stop: not the attached loop device"; }
ctl eject "$dev" >/dev/null || fail "eject $dev"
no_leftovers
ok "a blank image: mount refused and undone; --no-mount attaches; stop refused while it is open or attached; eject by device"
# A launcher killed with SIGKILL takes its devices along, and leaves a
# dead FUSE file, the loop device over it and the file system mounted
# there; the next launcher clears them when it starts, so the image can
# be mounted again and is not mounted twice.
ctl mount "$IMG" --mountpoint "$MNT" >"$WORK/mount.out" || fail "mount before the kill"
read -r dev on mp <"$WORK/mount.out"
stop_launcher KILL
grep -q " $MNT " /proc/self/mountinfo || fail "nothing left to clear: $MNT is not mounted"
start_launcher
grep -q "$dev over $WORK/run/mount-.*whose server is gone: unmounted and detached" \
    "$WORK/launcher.log" || { cat "$WORK/launcher.log"; fail "the restarted launcher did not clear $dev"; }
no_leftovers
ctl mount "$IMG" --mountpoint "$MNT" >/dev/null || fail "mount after the restart"
cmp -s "$MNT/data" "$WORK/data" || fail "the image's data after the restart"
ctl eject "$MNT" >/dev/null || fail "eject after the restart"
no_leftovers
e2fsck -fn "$IMG" >/dev/null 2>&1 || fail "the image does not fsck clean"
ok "after a launcher killed with SIGKILL, the next one clears its mount, loop device and FUSE file"
stop_launcher TERM
