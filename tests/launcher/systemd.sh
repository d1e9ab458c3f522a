#!/bin/sh
# spd-launcherd under systemd's protocols, without systemd: the control
# socket passed by socket activation (systemd-socket-activate, as
# spd-launcherd.socket would), and READY=1 on $NOTIFY_SOCKET (Type=notify)
# once it serves. The unit files pass systemd-analyze verify.
. "$(dirname "$0")/../lib.sh"
need python3 systemd-socket-activate
need_root "the launcher runs devices as the users of their classes"
. "$(dirname "$0")/common.sh"

# A notify socket: the first datagram goes to notify.out.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
open(sys.argv[2], "w").write(s.recv(4096).decode())
' "$WORK/notify.sock" "$WORK/notify.out" &
PIDS="$! $PIDS"
wait_until 10 test -S "$WORK/notify.sock" || fail "no notify socket"

mkdir -p "$WORK/run"
systemd-socket-activate --seqpacket -E NOTIFY_SOCKET="$WORK/notify.sock" \
    -l "$SPD_LAUNCHER_SOCKET" "$LAUNCHERD" --config-dir "$WORK/classes" \
    --state-dir "$WORK/state" >>"$WORK/launcher.log" 2>&1 &
LAUNCHER_PID=$!
wait_until 10 test -S "$SPD_LAUNCHER_SOCKET" || fail "systemd-socket-activate did not listen"
wait_until 30 launcher_ready || { cat "$WORK/launcher.log" >&2; fail "no launcher behind the passed socket"; }
ctl start ramdisk s1 4M >/dev/null || fail "start through the passed socket"
wait_until 10 test -s "$WORK/notify.out" || fail "no READY=1 on NOTIFY_SOCKET"
expect_eq "$(cat "$WORK/notify.out")" READY=1 "the notification"
ok "socket activation: the launcher serves the socket it is passed, and says READY=1"

pid=$(ctl info ramdisk s1 | awk '$1 == "pid" { print $2 }')
stop_launcher TERM
gone "$pid" || fail "ramdisk s1 outlived the launcher"
ok "SIGTERM stops the devices"

if command -v systemd-analyze >/dev/null; then
    mkdir "$WORK/units"
    sed -e "s|@SBINDIR@/spd-launcherd|$LAUNCHERD|" -e "s|@SYSCONFDIR@|/etc|" \
        "$SRC/tools/launcher/spd-launcherd.service.in" >"$WORK/units/spd-launcherd.service"
    cp "$SRC/tools/launcher/spd-launcherd.socket" "$WORK/units/"
    (cd "$WORK/units" && systemd-analyze verify --man=no ./spd-launcherd.service \
        ./spd-launcherd.socket) || fail "systemd-analyze verify"
    ok "the unit files pass systemd-analyze verify"
else
    skip_part "systemd-analyze is not installed"
fi
