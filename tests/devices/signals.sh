#!/bin/sh
# Signals and readiness, as a service manager or a shell user meets them:
# every signal that would end the process ends it cleanly (exports
# stopped, data flushed, FUSE unmounted, pid file removed, exit 0); SIGHUP
# reopens the debug log; SIGPIPE is ignored; READY=1 and STOPPING=1 reach
# $NOTIFY_SOCKET.
. "$(dirname "$0")/../lib.sh"
need nbdcopy nbdinfo python3

mounted() { grep -q " $1 fuse" /proc/mounts; }

# --- each ending signal: a clean stop ---------------------------------
for sig in INT TERM QUIT USR1 USR2 ALRM VTALRM PROF XCPU XFSZ IO PWR \
        RTMIN RTMAX; do
    disk=$WORK/disk.$sig
    start_device "$RAMDISK" --size 1M --fuse "$disk" \
        --nbd "nbd+unix:///?socket=$WORK/$sig.sock"
    pidfile=$(ls "$WORK"/server.*.pid)
    mounted "$disk" || fail "$sig: the FUSE file is not mounted"
    kill -s "$sig" "$SERVER_PID"
    status=0
    wait "$SERVER_PID" || status=$?
    PIDS=$(echo "$PIDS" | sed "s/\b$SERVER_PID\b//")
    expect_eq "$status" 0 "exit status after SIG$sig"
    grep -q 'stopping' "$WORK/server.log" || fail "SIG$sig: no stopping line"
    [ ! -e "$pidfile" ] || fail "SIG$sig: the pid file is left behind"
    mounted "$disk" && fail "SIG$sig: the FUSE file is still mounted"
    [ ! -e "$WORK/$sig.sock" ] || fail "SIG$sig: the NBD socket is left behind"
done
ok "SIGINT, TERM, QUIT, USR1, USR2, ALRM, VTALRM, PROF, XCPU, XFSZ, IO, PWR, RTMIN, RTMAX: exit 0, pid file removed, FUSE unmounted"

# --- in-flight data reaches the backing file --------------------------
img=$WORK/disk.img
sock=$WORK/raw.sock
head -c 8M /dev/urandom >"$WORK/data"
start_device "$RAWDISK" --file "$img" --size 8M --nbd "nbd+unix:///?socket=$sock"
nbdcopy "$WORK/data" "nbd+unix:///?socket=$sock" || fail "nbdcopy"
stop_device "$SERVER_PID"
cmp "$WORK/data" "$img" || fail "the file does not hold what was written before SIGTERM"
ok "data written before SIGTERM is in the file"

# --- SIGHUP reopens the debug log; SIGPIPE is ignored -----------------
sock=$WORK/hup.sock
log=$WORK/debug.log
start_device "$RAMDISK" --size 1M --debug-log "$log" --nbd "nbd+unix:///?socket=$sock"
nbdinfo "nbd+unix:///?socket=$sock" >/dev/null || fail "nbdinfo"
mv "$log" "$log.1"
kill -s HUP "$SERVER_PID"
wait_until 10 test -e "$log" || fail "SIGHUP did not reopen $log"
kill -s PIPE "$SERVER_PID"
head -c 1M /dev/urandom >"$WORK/mib"
nbdcopy "$WORK/mib" "nbd+unix:///?socket=$sock" || fail "nbdcopy after SIGHUP and SIGPIPE"
wait_until 10 grep -q WRITE "$log" || fail "no request logged in the reopened $log"
[ -s "$log.1" ] || fail "the rotated log is empty"
kill -0 "$SERVER_PID" || fail "SIGHUP or SIGPIPE ended the program"
stop_device "$SERVER_PID"
ok "SIGHUP reopens --debug-log (log rotation), SIGPIPE is ignored"

# --- sd_notify: READY=1 once serving, STOPPING=1 on the way out --------
# A datagram socket that prints what it receives, one message per line.
listen() {  # address output
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
a = sys.argv[1]
s.bind("\0" + a[1:] if a.startswith("@") else a)
open(sys.argv[2] + ".ready", "w").close()
s.settimeout(30)
for _ in range(2):
    print(s.recv(4096).decode(), flush=True)
' "$1" "$2" >"$2" &
    LISTENER=$!
    wait_until 10 test -e "$2.ready" || fail "the notify listener did not start"
}
for address in "$WORK/notify" "@spd-test-notify-$$"; do
    listen "$address" "$WORK/notified"
    NOTIFY_SOCKET=$address start_device "$RAMDISK" --size 1M --nbd "nbd+unix:///?socket=$WORK/n.sock"
    wait_until 10 grep -qx READY=1 "$WORK/notified" || fail "no READY=1 at $address"
    stop_device "$SERVER_PID"
    wait "$LISTENER" || fail "the notify listener at $address"
    grep -qx STOPPING=1 "$WORK/notified" || fail "no STOPPING=1 at $address"
    rm -f "$WORK/notified.ready"
done
ok "READY=1 and STOPPING=1 reach \$NOTIFY_SOCKET (a path, and '@' abstract)"

# --- the pid file: whole, by rename, never through a link -------------
ln -s "$WORK/target" "$WORK/link.pid"
start_device "$RAMDISK" --size 1M --nbd "nbd+unix:///?socket=$WORK/p.sock"
expect_eq "$(cat "$(ls "$WORK"/server.*.pid)")" "$SERVER_PID" "the pid file's content"
stop_device "$SERVER_PID"
"$RAMDISK" --size 1M --nbd "nbd+unix:///?socket=$WORK/q.sock" --pid-file "$WORK/link.pid" \
    >"$WORK/server.log" 2>&1 &
pid=$!
wait_until 10 test -f "$WORK/link.pid" -a ! -L "$WORK/link.pid" || fail "the pid file did not replace the link"
[ ! -e "$WORK/target" ] || fail "the pid file was written through a symbolic link"
kill -TERM "$pid"
wait "$pid" || fail "exit status after SIGTERM"
ok "the pid file holds the pid, is replaced by rename, never followed through a link"

# A link planted at the name the pid file is first written under (PATH.PID.tmp;
# the shell's pid is the server's after exec) is not followed either.
rm -f "$WORK/target"
status=0
sh -c 'ln -s "$1" "$2.$$.tmp" && exec "$3" --size 1M --nbd "nbd+unix:///?socket=$4" --pid-file "$2"' \
    sh "$WORK/target" "$WORK/planted.pid" "$RAMDISK" "$WORK/r.sock" >"$WORK/server.log" 2>&1 ||
    status=$?
expect_eq "$status" 1 "exit status with a link at the pid file's temporary name"
grep -q -- "--pid-file $WORK/planted.pid: File exists" "$WORK/server.log" ||
    { cat "$WORK/server.log" >&2; fail "no line about the pid file"; }
[ ! -e "$WORK/target" ] || fail "the pid file was written through a link at its temporary name"
[ ! -e "$WORK/planted.pid" ] || fail "a pid file appeared although the start failed"
ok "a link at the pid file's temporary name is not followed: the start fails, the target is untouched"
