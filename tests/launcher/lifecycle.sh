#!/bin/sh
# The launcher's lifetime and its devices': a persistent instance is
# recorded in the state folder and started again, with the same
# arguments, when the launcher starts again (a disk back after a reboot);
# the launcher stops its devices on SIGTERM, and when it is killed with
# SIGKILL no device outlives it.
. "$(dirname "$0")/../lib.sh"
need python3
need_root "the launcher runs devices as the users of their classes"
. "$(dirname "$0")/common.sh"

pid_of() { ctl info "$1" "$2" | awk '$1 == "pid" { print $2 }'; }

start_launcher
truncate -s 32M "$WORK/p1.img"
ctl start rawdisk p1 "$WORK/p1.img" >/dev/null || fail "start rawdisk p1"
ctl start ramdisk t1 8M >/dev/null || fail "start ramdisk t1"
[ -f "$WORK/state/rawdisk@p1" ] || fail "no record of the persistent rawdisk p1"
[ ! -e "$WORK/state/ramdisk@t1" ] || fail "a record of ramdisk t1, which is not persistent"
p1=$(pid_of rawdisk p1)
t1=$(pid_of ramdisk t1)
ok "a persistent instance is recorded in the state folder, the other not"

stop_launcher TERM
gone "$p1" || fail "rawdisk p1 outlived the launcher's SIGTERM"
gone "$t1" || fail "ramdisk t1 outlived the launcher's SIGTERM"
ok "SIGTERM: the launcher stops its devices, then exits"

start_launcher
wait_until 30 sh -c "'$SPDCTL' info rawdisk p1 | grep -q '^state  *running'" ||
    { cat "$WORK/launcher.log" >&2; fail "rawdisk p1 was not started again"; }
ctl info rawdisk p1 | grep -q "^command .*--file $WORK/p1.img " ||
    fail "p1 came back with other arguments"
ctl info ramdisk t1 >/dev/null 2>&1 && fail "ramdisk t1 (not persistent) came back"
ok "after a restart the persistent instance runs again with its arguments"

# Deadlines: a program that never says it is ready is killed after the
# class's ready-timeout; one that ignores SIGTERM gets SIGKILL after its
# stop-timeout.
cat >"$WORK/stubborn" <<'PY'
#!/usr/bin/python3
import os, signal, socket, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if sys.argv[1] == "ready":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"READY=1", "\0" + os.environ["NOTIFY_SOCKET"][1:])
time.sleep(600)
PY
chmod 755 "$WORK/stubborn"
printf 'executable = %s\narguments = %%1\nready-timeout = 1\nstop-timeout = 1\n' \
    "$WORK/stubborn" >"$WORK/classes/stubborn.conf"
chmod 644 "$WORK/classes/stubborn.conf"
if ctl start stubborn s1 silent 2>"$WORK/start.err"; then fail "a silent program was taken as ready"; fi
grep -q "killed by signal 9.*no readiness in time" "$WORK/start.err" ||
    { cat "$WORK/start.err"; fail "no 'not ready in time'"; }
ctl start stubborn s2 ready >/dev/null || fail "start stubborn s2"
s2=$(pid_of stubborn s2)
ctl stop stubborn s2 || fail "stop stubborn s2"
gone "$s2" || fail "stubborn s2 ($s2) survived its stop"
grep -q "stubborn/s2: not stopped in time: SIGKILL" "$WORK/launcher.log" || fail "no SIGKILL logged"
ok "a program not ready in time is killed; one that ignores SIGTERM gets SIGKILL"

# reload: SIGHUP to the instance, which keeps running; only to a running
# one.
cat >"$WORK/hupper" <<'PY'
#!/usr/bin/python3
import os, signal, socket, sys, time
signal.signal(signal.SIGHUP,
              lambda *_: open(sys.argv[1], "a").write("reloaded\n"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", "\0" + os.environ["NOTIFY_SOCKET"][1:])
while True:
    time.sleep(600)
PY
chmod 755 "$WORK/hupper"
printf 'executable = %s\narguments = %%1\n' "$WORK/hupper" >"$WORK/classes/hupper.conf"
chmod 644 "$WORK/classes/hupper.conf"
touch "$WORK/hups" && chmod 666 "$WORK/hups"
ctl start hupper h1 "$WORK/hups" >/dev/null || fail "start hupper h1"
ctl reload hupper h1 || fail "reload hupper h1"
ctl reload hupper h1 || fail "reload hupper h1 again"
wait_until 10 sh -c "[ \$(grep -c reloaded '$WORK/hups') -eq 2 ]" ||
    fail "two reloads did not reach the instance: $(cat "$WORK/hups")"
ctl info hupper h1 | grep -q '^state  *running' || fail "h1 stopped after reload"
if ctl reload hupper nobody 2>"$WORK/reload.err"; then fail "reload of no instance succeeded"; fi
grep -q "hupper nobody is not running" "$WORK/reload.err" ||
    { cat "$WORK/reload.err"; fail "no 'not running' for reload"; }
ctl stop hupper h1 || fail "stop hupper h1"
ok "reload sends SIGHUP to a running instance, which goes on; none to a missing one"

# Stopping it removes the record: it stays stopped after the next restart.
ctl stop rawdisk p1 || fail "stop rawdisk p1"
[ ! -e "$WORK/state/rawdisk@p1" ] || fail "stop left the record of p1"
ok "a stopped instance is no longer recorded"

# SIGKILL: nothing outlives the launcher.
ctl start rawdisk p1 "$WORK/p1.img" >/dev/null || fail "start rawdisk p1 again"
ctl start ramdisk t2 8M >/dev/null || fail "start ramdisk t2"
p1=$(pid_of rawdisk p1)
t2=$(pid_of ramdisk t2)
stop_launcher KILL
wait_until 10 gone "$p1" || fail "rawdisk p1 ($p1) outlived the launcher's SIGKILL"
wait_until 10 gone "$t2" || fail "ramdisk t2 ($t2) outlived the launcher's SIGKILL"
ok "SIGKILL of the launcher: no device outlives it"

# The next launcher brings p1 back even so (its record is still there).
start_launcher
wait_until 30 sh -c "'$SPDCTL' info rawdisk p1 | grep -q '^state  *running'" ||
    { cat "$WORK/launcher.log" >&2; fail "rawdisk p1 not back after the SIGKILL"; }
ctl stop rawdisk p1 || fail "stop rawdisk p1"
stop_launcher TERM
ok "after a SIGKILL the persistent instance comes back too"
