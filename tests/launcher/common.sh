# common.sh - sourced by the launcher tests after ../lib.sh: example
# classes in $WORK/classes (the shipped ones, with the build's programs),
# a launcher on $WORK/run/launcher.sock with its state in $WORK/state,
# and a cleanup that leaves no launcher, device, mount or loop device.
#
#   start_launcher          (again after stop_launcher: a restart)
#   stop_launcher [SIGNAL]  and wait for it
#   ctl ARGS...             spdctl against this launcher
#   gone PID                the process has exited (or is a zombie)

LAUNCHERD=$BUILD/tools/launcher/spd-launcherd
SPDCTL=$BUILD/tools/launcher/spdctl
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SPD_LAUNCHER_SOCKET=$WORK/run/launcher.sock
export SPD_LAUNCHER_SOCKET
LAUNCHER_PID=""

chmod 755 "$WORK"   # so that another user reaches the socket
mkdir -p "$WORK/classes"
for c in ramdisk rawdisk mount mount-ro mount-ublk mount-ublk-ro; do
    sed "s|@BINDIR@|$BUILD/devices|" "$SRC/tools/launcher/classes/$c.conf.in" \
        >"$WORK/classes/$c.conf"
done
chmod 644 "$WORK/classes"/*.conf

ctl() { "$SPDCTL" "$@"; }

gone() {
    ! kill -0 "$1" 2>/dev/null ||
        [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

launcher_ready() { ctl list >/dev/null 2>&1; }

start_launcher() {
    "$LAUNCHERD" --config-dir "$WORK/classes" --socket "$SPD_LAUNCHER_SOCKET" \
        --state-dir "$WORK/state" >>"$WORK/launcher.log" 2>&1 &
    LAUNCHER_PID=$!
    wait_until 30 launcher_ready ||
        { cat "$WORK/launcher.log" >&2; fail "spd-launcherd did not start"; }
}

stop_launcher() {   # [SIGNAL]: after SIGTERM it must exit 0
    kill -"${1:-TERM}" "$LAUNCHER_PID"
    status=0
    wait "$LAUNCHER_PID" || status=$?
    LAUNCHER_PID=""
    [ "${1:-TERM}" != TERM ] || [ "$status" -eq 0 ] ||
        { cat "$WORK/launcher.log" >&2; fail "spd-launcherd exited with $status"; }
}

# Everything under $WORK: loop devices over its files (noted first: once
# their FUSE file is unmounted they no longer name it), mounts (deepest
# first), the launcher (its devices die with it) and FUSE files it left.
launcher_cleanup() {
    loops=""
    for f in /sys/block/loop*/loop/backing_file; do
        [ -e "$f" ] || continue
        case $(cat "$f") in
        "$WORK"/*) d=${f#/sys/block/}; loops="$loops /dev/${d%%/*}" ;;
        esac
    done
    unmount_work
    for l in $loops; do losetup -d "$l"; done
    [ -z "$LAUNCHER_PID" ] || { kill -KILL "$LAUNCHER_PID"; wait "$LAUNCHER_PID"; }
    unmount_work
}
unmount_work() {
    awk -v w="$WORK" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r mp; do umount -l "$mp"; done
}
at_exit launcher_cleanup
# Mounts and loop devices outlive a test killed by a closed pipe or a
# hang-up too: clean up then as well.
trap 'exit 1' HUP PIPE
