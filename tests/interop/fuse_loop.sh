#!/bin/sh
# The FUSE export as a kernel block device: fuse_serve mounts an in-memory
# unit as the file $WORK/disk, losetup makes it a /dev/loopN (buffered,
# then with --direct-io=on where the kernel allows it on FUSE); ext4 is
# made and filled, and after a fresh attach it must fsck clean and give the
# same checksums. Then parallel partial-block writes are verified (with
# fio, where installed). Stopping the server must leave no mount behind,
# and a server killed with SIGKILL leaves one the next server replaces.
. "$(dirname "$0")/../lib.sh"
need losetup mkfs.ext4 e2fsck mount umount sha256sum od
need_root "losetup and mount"
[ -e /dev/fuse ] || skip "no /dev/fuse"

SERVE=$BUILD/tests/fuse_serve
DISK=$WORK/disk
MNT=$WORK/mnt
SIZE_MB=256
mkdir -p "$MNT"

is_mountpoint() {
    awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# Start the server; it says "ready" once the file is mounted.
"$SERVE" "$DISK" "$SIZE_MB" 4096 >"$WORK/serve.out" 2>"$WORK/server.log" &
SERVER_PID=$!
PIDS="$SERVER_PID $PIDS"
# Runs after the ext4 and loop cleanups below (registered later, run
# earlier): stop the server, and take away a mount a crashed one left.
at_exit "kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null; umount -l '$DISK' 2>/dev/null"

ready() { grep -qx ready "$WORK/serve.out"; }
gone() {   # exited: no such process, or a zombie not yet waited for
    ! kill -0 "$SERVER_PID" 2>/dev/null ||
        [ "$(awk '{ print $3 }' "/proc/$SERVER_PID/stat")" = Z ]
}
ready_or_gone() { ready || gone; }
wait_until 30 ready_or_gone || fail "fuse_serve did not get ready in 30 s"
if ! ready; then
    status=0
    wait "$SERVER_PID" || status=$?
    [ "$status" -eq 77 ] && skip "cannot mount FUSE: $(cat "$WORK/server.log")"
    cat "$WORK/server.log" >&2
    fail "fuse_serve exited with $status"
fi
is_mountpoint "$DISK" || fail "$DISK is not a mountpoint"
expect_eq "$(stat -c %s "$DISK")" $((SIZE_MB * 1024 * 1024)) "size of $DISK"
ok "fuse_serve mounted a $SIZE_MB MiB disk at $DISK"

LOOP=""
detach() { [ -z "$LOOP" ] || losetup -d "$LOOP"; LOOP=""; }
# Single quotes: $LOOP is whatever is attached when the test ends.
at_exit 'umount "$MNT" 2>/dev/null; [ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null'

# attach OPTIONS...: a loop device over the disk in $LOOP.
attach() {
    LOOP=$(losetup -f --show "$@" "$DISK") || skip "losetup failed (no loop devices?)"
}

# 200 files of random sizes (up to 512 KiB) in 10 directories.
fill_tree() {
    i=0
    while [ $i -lt 200 ]; do
        dir=$MNT/d$((i % 10))
        mkdir -p "$dir"
        size=$(( $(od -An -N4 -tu4 /dev/urandom) % 524288 + 1 ))
        head -c "$size" /dev/urandom >"$dir/f$i"
        i=$((i + 1))
    done
}

# ext4 through a loop device attached with OPTIONS: made, filled,
# unmounted and detached; then on a fresh attach (the page caches gone)
# it must fsck clean and hold the same bytes.
ext4_roundtrip() {
    what=$1
    shift
    attach "$@"
    mkfs.ext4 -q -F "$LOOP"
    mount "$LOOP" "$MNT"
    fill_tree
    (cd "$MNT" && find . -type f -exec sha256sum {} + | sort -k2) >"$WORK/sums"
    expect_eq "$(wc -l <"$WORK/sums")" 200 "files written"
    umount "$MNT"
    detach

    attach "$@"
    e2fsck -fn "$LOOP" >"$WORK/fsck.log" 2>&1 || { cat "$WORK/fsck.log" >&2; fail "e2fsck ($what)"; }
    mount "$LOOP" "$MNT"
    (cd "$MNT" && sha256sum -c --quiet "$WORK/sums") || fail "checksums after remount ($what)"
    umount "$MNT"
    detach
    ok "ext4 on /dev/loop ($what): 200 files intact, fsck clean"
}

ext4_roundtrip "buffered"

# Direct I/O: losetup asks, the kernel may refuse for a FUSE file.
dio=0
if LOOP=$(losetup -f --show --direct-io=on "$DISK" 2>"$WORK/dio.err"); then
    dio=$(losetup -n -O DIO -l "$LOOP" | tr -d ' ')
    detach
fi
if [ "$dio" = 1 ]; then
    ext4_roundtrip "direct I/O" --direct-io=on
else
    skip_part "direct I/O: the kernel refused it on the FUSE file (DIO=$dio)"
fi

# Partial-block writes in parallel: 512-byte sectors of the 4096-byte
# unit, 32 in flight through loop direct I/O. Each is a read-modify-write
# of its block, and none may undo another's bytes (fio checks every one).
if ! command -v fio >/dev/null 2>&1; then
    skip_part "parallel partial-block writes: fio is not installed"
elif [ "$dio" = 1 ]; then
    attach --direct-io=on
    fio --name=rmw --filename="$LOOP" --direct=1 --ioengine=libaio \
        --iodepth=32 --rw=randwrite --bs=512 --size=16M --verify=crc32c \
        --verify_fatal=1 --verify_state_save=0 \
        --output="$WORK/fio.log" ||
        { cat "$WORK/fio.log" >&2; fail "fio verify of parallel 512-byte writes"; }
    detach
    ok "parallel 512-byte writes on 4096-byte blocks verified"
fi

# Stop: a clean exit, and neither the mount nor the file it made remain.
stop_device "$SERVER_PID"
! is_mountpoint "$DISK" || fail "$DISK is still a mountpoint after stop"
[ ! -e "$DISK" ] || fail "$DISK was not removed"
ok "fuse_serve stopped cleanly and unmounted"

# --fuse never mounts through a symbolic link: someone's link at the path
# would put the disk over the file it names.
printf 'precious\n' >"$WORK/precious"
before=$(sha256sum <"$WORK/precious")
ln -s "$WORK/precious" "$WORK/link"
ln -s "$WORK/absent" "$WORK/dangling"
for link in "$WORK/link" "$WORK/dangling"; do
    status=0
    timeout 30 "$RAMDISK" --size 1M --fuse "$link" >"$WORK/link.log" 2>&1 || status=$?
    expect_eq "$status" 1 "exit status of --fuse $link"
    grep -q "$link is a symbolic link" "$WORK/link.log" ||
        { cat "$WORK/link.log" >&2; fail "--fuse $link: no line saying it is a link"; }
    [ -L "$link" ] || fail "$link is no longer the link"
done
! is_mountpoint "$WORK/precious" || fail "a disk was mounted over the link's target"
expect_eq "$(sha256sum <"$WORK/precious")" "$before" "the link's target"
[ ! -e "$WORK/absent" ] || fail "a dangling link's target was created"
ok "--fuse on a symbolic link is refused (ELOOP); the file it names is untouched"

# A server killed with SIGKILL leaves its FUSE file mounted but dead
# (ENOTCONN): the next server at that path detaches it and serves.
at_exit "umount -l '$WORK/stale' 2>/dev/null"
"$RAMDISK" --size 8M --fuse "$WORK/stale" >"$WORK/stale1.log" 2>&1 &
pid=$!
wait_until 30 is_mountpoint "$WORK/stale" || { cat "$WORK/stale1.log"; fail "no mount at $WORK/stale"; }
kill -KILL $pid
wait $pid 2>/dev/null || true   # killed: status 137
stat "$WORK/stale" >/dev/null 2>"$WORK/stat.err" && fail "a dead server's FUSE file still answers"
grep -q "not connected" "$WORK/stat.err" || { cat "$WORK/stat.err"; fail "stat of the dead FUSE file"; }
start_device "$RAMDISK" --size 16M --fuse "$WORK/stale"
expect_eq "$(stat -c %s "$WORK/stale")" 16777216 "size of the new server's file"
stop_device "$SERVER_PID"
! is_mountpoint "$WORK/stale" || fail "$WORK/stale is still a mountpoint after stop"
ok "a dead server's FUSE file is detached by the next server at its path"
