#!/bin/sh
# spd-launcherd and spdctl as a user drives them: classes, start, info,
# list (table and --json), stop of ramdisk and rawdisk instances; a second
# instance of a name refused; arguments that would be options refused; a
# user the class does not allow refused (run as nobody); a device killed
# from outside shows up as exited with its status.
. "$(dirname "$0")/../lib.sh"
need python3 setpriv
need_root "the launcher runs devices as the users of their classes"
. "$(dirname "$0")/common.sh"

start_launcher

ctl classes >"$WORK/classes.out"
grep -q '^ramdisk  *yes  *no ' "$WORK/classes.out" ||
    { cat "$WORK/classes.out"; fail "spdctl classes does not list ramdisk"; }
ok "spdctl classes lists the example classes"

# start, info, list, stop: a RAM disk and a disk image.
ctl start ramdisk r1 16M >"$WORK/start.out" || fail "start ramdisk r1"
grep -q '^state  *running' "$WORK/start.out" || fail "start did not wait for readiness"
ctl start rawdisk d1 "$WORK/d1.img" >/dev/null 2>&1 && fail "rawdisk started on a missing image"
truncate -s 32M "$WORK/d1.img"
ctl start rawdisk d1 "$WORK/d1.img" >/dev/null || fail "start rawdisk d1"
ctl info ramdisk r1 >"$WORK/info.out" || fail "info ramdisk r1"
pid=$(awk '$1 == "pid" { print $2 }' "$WORK/info.out")
grep -q "^command .*spd-ramdisk --size 16M --nbd" "$WORK/info.out" || fail "info: no command line"
sock=$(awk '$1 == "export" { sub(/.*socket=/, "", $2); print $2 }' "$WORK/info.out")
[ -S "$sock" ] || fail "info: the export $sock is not a socket"
expect_eq "$(cat "/proc/$pid/comm")" spd-ramdisk "process of ramdisk r1"
ok "start waits until ready; info gives pid $pid, the command line and the export"

ctl list >"$WORK/list.out"
grep -q '^ramdisk  *r1  *running' "$WORK/list.out" || fail "list: no r1"
grep -q '^rawdisk  *d1  *running' "$WORK/list.out" || fail "list: no d1"
ctl --json list | python3 -c '
import json, sys
l = {(i["class"], i["name"]): i for i in json.load(sys.stdin)}
assert l[("ramdisk", "r1")]["pid"] == int(sys.argv[1]), l
assert l[("rawdisk", "d1")]["state"] == "running", l
assert l[("rawdisk", "d1")]["export"][0].startswith("nbd+unix://"), l
' "$pid" || fail "list --json"
ctl --json info ramdisk r1 | python3 -c '
import json, sys
i = json.load(sys.stdin)
assert i["state"] == "running" and i["uptime"] >= 0 and i["device"] == [], i
' || fail "info --json"
ctl --json classes | python3 -c '
import json, sys
c = {x["class"]: x for x in json.load(sys.stdin)}
assert c["ramdisk"]["allowed"] == "yes" and c["rawdisk"]["persistent"] == "yes", c
assert c["mount"]["arguments"] == 1, c
' || fail "classes --json"
ok "list: a table, and JSON with pid, state and exports; info and classes in JSON"

# Refusals: one line, non-zero, nothing changed.
refused() {   # WANT-TEXT CMD...: fails with a line containing WANT-TEXT
    want=$1
    shift
    if "$@" >"$WORK/ref.out" 2>&1; then fail "not refused: $*"; fi
    grep -q -- "$want" "$WORK/ref.out" || { cat "$WORK/ref.out"; fail "$*: no '$want'"; }
}
refused "already running" ctl start ramdisk r1 16M
refused "unknown class" ctl start nosuch x
refused "starts with '-'" ctl start ramdisk r2 -- --size=1G
refused "takes 1 argument" ctl start ramdisk r2 16M extra
refused "not an instance name" ctl start ramdisk ../x 16M
refused "not running" ctl stop ramdisk nosuch
refused "not running" ctl info ramdisk nosuch
expect_eq "$(ctl --json list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 2 \
    "instances after the refusals"
ok "refused: a second r1, an unknown class, an option as argument, a wrong count, a bad name"

# Malformed requests, as any local user could send them: an error each,
# and the launcher goes on.
python3 - "$SPD_LAUNCHER_SOCKET" <<'PY' || fail "malformed requests"
import socket, sys
def ask(msg):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.send(msg)
    r = s.recv(200000)
    s.close()
    return r
for msg, want in [(b"list", b"error\nmalformed request"),
                  (b"\0", b"error\nunknown request ''"),
                  (b"start\0" * 17, b"error\nmalformed request"),
                  (b"x" * 70000, b"error\nmalformed request"),
                  (b"list\0extra\0", b"error\nunknown request 'list'"),
                  (b"info\0ramdisk\0", b"error\nusage: info CLASS NAME"),
                  (b"start\0../../etc/passwd\0x\0", b"error\n'../../etc/passwd' is not a class name")]:
    got = ask(msg)
    assert got.startswith(want), (msg[:40], got)
assert ask(b"list\0").startswith(b"ok\n")
PY
ok "malformed requests are answered with an error; the launcher goes on"

# Another user: the classes allow the group disk only.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$SPDCTL" "$@"; }
refused "not allowed" as_nobody start ramdisk r9 1M
refused "not allowed" as_nobody stop ramdisk r1
refused "not allowed" as_nobody info ramdisk r1
expect_eq "$(as_nobody list | wc -l)" 1 "lines nobody sees in list (the header)"
# A member of the group disk (a supplementary group) is allowed.
setpriv --reuid=65534 --regid=65534 --groups=disk "$SPDCTL" start ramdisk g1 1M >/dev/null ||
    fail "nobody in the group disk could not start g1"
setpriv --reuid=65534 --regid=65534 --groups=disk "$SPDCTL" stop ramdisk g1 ||
    fail "nobody in the group disk could not stop g1"
# Allowed by the class: then it may start, and query and stop its own.
sed -i 's/^#allow-users = alice/allow-users = nobody/' "$WORK/classes/ramdisk.conf"
as_nobody start ramdisk r9 1M >/dev/null || fail "nobody, now allowed, could not start r9"
# Allowed no more: still the owner of r9, who may always query and stop it.
sed -i 's/^allow-users = nobody/#allow-users = alice/' "$WORK/classes/ramdisk.conf"
refused "not allowed" as_nobody start ramdisk r8 1M
as_nobody info ramdisk r9 | grep -q '^owner  *nobody' || fail "r9's owner is not nobody"
as_nobody stop ramdisk r9 || fail "nobody could not stop r9"
ok "a user the class does not allow is refused (start, stop, info); one it allows (as user or by a supplementary group) may, and the owner may always query and stop"

# The class's user: the device runs as nobody (on TCP: the run folder is
# root's).
sed -e 's/^user = root/user = nobody/' -e 's|^arguments = .*|arguments = --size %1 --nbd nbd://127.0.0.1:0/|' \
    "$WORK/classes/ramdisk.conf" >"$WORK/classes/ramnobody.conf"
chmod 644 "$WORK/classes/ramnobody.conf"
ctl start ramnobody n1 4M >/dev/null || fail "start ramnobody n1"
npid=$(ctl info ramnobody n1 | awk '$1 == "pid" { print $2 }')
expect_eq "$(stat -c %u "/proc/$npid")" 65534 "uid of the device of class ramnobody"
ctl stop ramnobody n1 || fail "stop ramnobody n1"
ok "a device runs as its class's user"

# A class file others may write decides nothing; nor one that is broken.
chmod 666 "$WORK/classes/ramnobody.conf"
refused "writable by others" ctl start ramnobody n2 4M
printf 'executable = /nonexistent/prog\narguments = %%1\n' >"$WORK/classes/broken.conf"
chmod 644 "$WORK/classes/broken.conf"
refused "cannot run /nonexistent/prog" ctl start broken b1 x
printf 'executable = /bin/true\nfrobnicate = yes\n' >"$WORK/classes/broken.conf"
refused "unknown key 'frobnicate'" ctl start broken b1
rm "$WORK/classes/ramnobody.conf" "$WORK/classes/broken.conf"
ok "refused: a class file others may write, a missing program, an unknown key"

# A device killed from outside: exited, with its status, until stopped.
kill -KILL "$pid"
wait_until 10 sh -c "'$SPDCTL' info ramdisk r1 | grep -q '^state  *exited'" ||
    fail "r1 killed: not shown as exited"
ctl info ramdisk r1 | grep -q '^status  *killed by signal 9' || fail "r1: no status"
ctl start ramdisk r1 16M >/dev/null || fail "r1 could not start again after it died"
ok "a device killed with SIGKILL shows as exited by signal 9; it may start again"

ctl stop ramdisk r1 || fail "stop ramdisk r1"
ctl stop rawdisk d1 || fail "stop rawdisk d1"
gone "$pid" || fail "r1's process is still there"
expect_eq "$(ctl list | wc -l)" 1 "lines in list after stopping everything"
[ ! -e "$sock" ] || fail "the stopped ramdisk left its socket $sock"
ok "stop: the devices exit and are gone from the list"

stop_launcher TERM
grep -q 'spd-launcherd: stopped' "$WORK/launcher.log" || fail "the launcher did not stop cleanly"
ok "the launcher stops on SIGTERM"
