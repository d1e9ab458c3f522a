#!/bin/sh
# Several gateways, one disk: two spd-passthrough processes serve one file
# over iSCSI (read-only: a writable file is one process's alone), each in
# its own target port group (--port-group, --alua). Both report the same
# groups and states (REPORT TARGET PORT GROUPS, byte for byte), each its
# own relative port and group in VPD 83h and as its TargetPortalGroupTag
# (SendTargets), and the file's data through either. A gateway (here
# spd-ramdisk) in standby or unavailable refuses what SPC-4 says with NOT
# READY, LOGICAL UNIT NOT ACCESSIBLE and runs the rest; bad options are
# refused. States changed while served (--alua-file, SIGHUP): reported at
# once, and the first command of a session already open gets ASYMMETRIC
# ACCESS STATE CHANGED; a bad file leaves them. Driven by spd-scsitool
# (libiscsi) and iscsi_alua.py (raw PDUs).
. "$(dirname "$0")/../lib.sh"
TOOL=$BUILD/tools/scsitool/spd-scsitool
HERE=$(dirname "$0")
[ -x "$TOOL" ] || skip "spd-scsitool is not built (libiscsi-dev missing)"
need iscsi-ls python3 cmp diff

IQN=iqn.2026-11.org.spd:alua
UUID=5d2c1f3e-8a47-4b6e-9c10-2f3a4b5c6d7e
PASSTHROUGH=$BUILD/devices/spd-passthrough
IMG=$WORK/disk.img
head -c 1M /dev/urandom >"$IMG"
RTPG='a3 0a 00 00 00 00 00 00 04 00 00 00'

# gateway N ALUA PROGRAM ARGS...: start gateway N (group N) with the list
# ALUA (a path: --alua-file); its URL in URL_N, its pid in PID_N, its log
# in $WORK/gwN.log.
gateway() {
    n=$1 alua=$2
    shift 2
    pidfile=$WORK/gw$n.pid
    rm -f "$pidfile"
    case $alua in
    /*) list_option=--alua-file ;;
    *) list_option=--alua ;;
    esac
    "$@" --uuid "$UUID" --iscsi-target "$IQN" --iscsi 127.0.0.1:0 \
        --port-group "$n" "$list_option" "$alua" \
        --pid-file "$pidfile" >"$WORK/gw$n.log" 2>&1 &
    set -- "$n"
    eval "PID_$1=$!"
    PIDS="$! $PIDS"
    wait_until 30 test -s "$pidfile" ||
        { cat "$WORK/gw$1.log" >&2; fail "gateway $1 did not start"; }
    eval "URL_$1=$(serving_uri "$WORK/gw$1.log" iscsi://)"
}
stop_gateway() {
    eval "pid=\$PID_$1"
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    PIDS=$(echo "$PIDS" | sed "s/\b$pid\b//")
    [ "$status" -eq 0 ] || { cat "$WORK/gw$1.log" >&2; fail "gateway $1 exited with $status"; }
}

# tool STATUS ARGS...: spd-scsitool must exit STATUS; output in $WORK/out.
tool() {
    want=$1
    shift
    status=0
    "$TOOL" "$@" >"$WORK/out" 2>"$WORK/err" || status=$?
    [ "$status" -eq "$want" ] ||
        { cat "$WORK/out" "$WORK/err" >&2; fail "spd-scsitool $*: exit $status, want $want"; }
}
# json EXPR: a python expression over j, the JSON in $WORK/out.
json() {
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$WORK/out" ||
        { cat "$WORK/out" >&2; fail "JSON: $1"; }
}

# states N FILE: iscsi_alua.py's lines for gateway N (the login's
# TargetPortalGroupTag, then each command's status and sense) must be
# those of FILE.
states() {
    eval "url=\$URL_$1"
    portal=${url%/"$IQN"/0}
    python3 "$HERE/iscsi_alua.py" "${portal##*:}" "$IQN" >"$WORK/states" 2>&1 ||
        { cat "$WORK/states" >&2; fail "iscsi_alua.py against gateway $1"; }
    diff -u "$2" "$WORK/states" >&2 || fail "gateway $1: the commands' outcomes"
}

# rtpg_check FILE: the REPORT TARGET PORT GROUPS data of groups 1:ao and
# 2:ano, each with its one port, PREF on the optimized one.
rtpg_check() {
    python3 - "$1" <<'END' || fail "REPORT TARGET PORT GROUPS data of $1"
import sys
d = open(sys.argv[1], "rb").read()
want = bytes([0, 0, 0, 24,
              0x80, 0x0f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1,   # PREF, AO; port 1
              0x01, 0x0f, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2])  # AN; port 2
if d != want:
    print("got  " + d.hex(" "), "want " + want.hex(" "), sep="\n")
    sys.exit(1)
END
}

# --- two gateways, group 1 active/optimized, group 2 active/non-optimized
gateway 1 1:ao,2:ano "$PASSTHROUGH" --file "$IMG" --read-only
gateway 2 1:ao,2:ano "$PASSTHROUGH" --file "$IMG" --read-only
for n in 1 2; do
    eval "url=\$URL_$n"
    tool 0 "$url" raw "$RTPG" --in 1024 --output "$WORK/rtpg.$n"
    rtpg_check "$WORK/rtpg.$n"
    tool 0 --json "$url" vpd 83
    json "[(d['type'], d['value']) for d in j['designators'] if d['association'] == 'target port'] == [('relative target port', $n), ('target port group', $n)]"
    json "any(d['type'] == 'NAA' for d in j['designators'])"
    tool 0 --json "$url" inquiry
    json "j['tpgs'] == 1"
done
cmp "$WORK/rtpg.1" "$WORK/rtpg.2" || fail "both gateways report the same groups"
ok "two gateways report the same two groups (1 ao PREF, 2 ano, a port each), each its own port and group in VPD 83h"

for n in 1 2; do
    eval "url=\$URL_$n"
    portal=${url%/"$IQN"/0}
    port=${portal##*:}
    iscsi-ls -s "$portal" >"$WORK/ls.$n" 2>&1 || { cat "$WORK/ls.$n" >&2; fail "discovery on gateway $n"; }
    grep -q "Portal:127.0.0.1:$port,$n\$" "$WORK/ls.$n" ||
        { cat "$WORK/ls.$n" >&2; fail "gateway $n: SendTargets gives TargetPortalGroupTag $n"; }
done
ok "each gateway's TargetPortalGroupTag is its group (SendTargets)"

for n in 1 2; do
    eval "url=\$URL_$n"
    tool 0 "$url" read 0 2048 --output "$WORK/back.$n"
    cmp "$IMG" "$WORK/back.$n" || fail "the file's data through gateway $n"
done
ok "the file's data through either gateway"

# Active/optimized and active/non-optimized: everything runs (WRITE meets
# the read-only file), and the login answers each gateway's tag.
for n in 1 2; do
    cat >"$WORK/want" <<END
tpgt $n
TEST UNIT READY 00
READ(10) 00
WRITE(10) 02 7/27/00
INQUIRY 00
MODE SENSE(6) 00
READ CAPACITY(16) 00
REPORT LUNS 00
PERSISTENT RESERVE IN 00
REPORT TARGET PORT GROUPS 00
END
    states $n "$WORK/want"
done
ok "ao and ano gateways run every command; each logs in with its tag"
stop_gateway 1
stop_gateway 2

# --- group 2 in standby: inquiries, mode and reservations, nothing else
gateway 2 1:ao,2:standby "$RAMDISK" --size 1M
cat >"$WORK/want" <<'END'
tpgt 2
TEST UNIT READY 02 2/04/0b
READ(10) 02 2/04/0b
WRITE(10) 02 2/04/0b
INQUIRY 00
MODE SENSE(6) 00
READ CAPACITY(16) 00
REPORT LUNS 00
PERSISTENT RESERVE IN 00
REPORT TARGET PORT GROUPS 00
END
states 2 "$WORK/want"
stop_gateway 2
ok "standby: TEST UNIT READY, READ, WRITE refused (NOT READY, 04h/0Bh); INQUIRY, MODE SENSE, READ CAPACITY(16), REPORT LUNS, PR IN, RTPG run"

# --- group 2 unavailable: inquiries only
gateway 2 1:ao,2:unavailable "$RAMDISK" --size 1M
cat >"$WORK/want" <<'END'
tpgt 2
TEST UNIT READY 02 2/04/0c
READ(10) 02 2/04/0c
WRITE(10) 02 2/04/0c
INQUIRY 00
MODE SENSE(6) 02 2/04/0c
READ CAPACITY(16) 02 2/04/0c
REPORT LUNS 00
PERSISTENT RESERVE IN 02 2/04/0c
REPORT TARGET PORT GROUPS 00
END
states 2 "$WORK/want"
stop_gateway 2
ok "unavailable: all but INQUIRY, REPORT LUNS, RTPG (and REQUEST SENSE) refused (NOT READY, 04h/0Ch)"

# --- states changed while served: --alua-file, rewritten, and SIGHUP
ALUA=$WORK/alua
printf ' 1:ao,2:ano \n' >"$ALUA"
gateway 2 "$ALUA" "$RAMDISK" --size 1M
portal=${URL_2%/"$IQN"/0}
mkfifo "$WORK/ctl"
python3 "$HERE/iscsi_alua.py" "${portal##*:}" "$IQN" --session \
    <"$WORK/ctl" >"$WORK/session" 2>&1 &
PY=$!
PIDS="$PY $PIDS"
exec 3>"$WORK/ctl"
lines=1
# at_least N FILE: FILE has N lines or more.
at_least() {
    [ "$(wc -l <"$2")" -ge "$1" ]
}
# send COMMAND: one command on the open session, answered.
send() {
    echo "$1" >&3
    lines=$((lines + 1))
    wait_until 10 at_least "$lines" "$WORK/session" ||
        { cat "$WORK/session" >&2; fail "no answer to $1 on the session"; }
}
sighup_lines() {   # N: gateway 2 has said N lines after SIGHUP
    [ "$(grep -c SIGHUP "$WORK/gw2.log")" -ge "$1" ]
}
# hup LIST WORDS: LIST into the file, SIGHUP, and the log line with WORDS.
hups=0
hup() {
    printf '%s\n' "$1" >"$ALUA"
    kill -HUP "$PID_2"
    hups=$((hups + 1))
    wait_until 10 sighup_lines "$hups" ||
        { cat "$WORK/gw2.log" >&2; fail "no line after SIGHUP"; }
    tail -n 1 "$WORK/gw2.log" | grep -qF "$2" ||
        { cat "$WORK/gw2.log" >&2; fail "SIGHUP with $1: no '$2'"; }
}
# groups S1 S2: spd-scsitool, a new session, reports groups 1 and 2 so.
groups() {
    tool 0 --json "$URL_2" port-groups
    json "[(g['id'], g['state']) for g in j['port_groups']] == [(1, '$1'), (2, '$2')]"
}
send "WRITE(10)"
groups active/optimized active/non-optimized
hup 1:standby,2:ao "ALUA states now 1:standby,2:ao"
groups standby active/optimized
send "WRITE(10)"                    # the unit attention, once
send "WRITE(10)"
send "REPORT TARGET PORT GROUPS"
ok "SIGHUP: the file's new states reported at once; an open session's next command gets ASYMMETRIC ACCESS STATE CHANGED, once"

hup 2:ao,1:standby "ALUA states now 2:ao,1:standby"
send "WRITE(10)"                    # the same states: no unit attention
hup 1:ao,2:ao,3:ao "port group 3 is not one of the unit's; the states stay 2:ao,1:standby"
hup 2:ao "the unit has 2 port groups, 1 listed: each is to be listed once; the states stay 2:ao,1:standby"
hup 1:ao,2:ao,1:ao "port group 1 is listed twice; the states stay"
hup 1:ao,2:fast "the state is none of ao, ano, standby, unavailable; the states stay"
hup "1:ao
2:ao" "more than one line; the states stay"
rm "$ALUA"
kill -HUP "$PID_2"
hups=$((hups + 1))
wait_until 10 sighup_lines "$hups" ||
    fail "no line after SIGHUP without the file"
tail -n 1 "$WORK/gw2.log" | grep -qF "No such file or directory; the states stay 2:ao,1:standby" ||
    { cat "$WORK/gw2.log" >&2; fail "SIGHUP without the file"; }
groups standby active/optimized
send "WRITE(10)"                    # bad files: no unit attention either
exec 3>&-
wait "$PY" || { cat "$WORK/session" >&2; fail "iscsi_alua.py --session"; }
PIDS=$(echo "$PIDS" | sed "s/\b$PY\b//")
cat >"$WORK/want" <<'END'
tpgt 2
WRITE(10) 00
WRITE(10) 02 6/2a/06
WRITE(10) 00
REPORT TARGET PORT GROUPS 00
WRITE(10) 00
WRITE(10) 00
END
diff -u "$WORK/want" "$WORK/session" >&2 || fail "the session's answers"
stop_gateway 2
ok "the same states again raise nothing; a bad, two-line or missing file is refused with one line, the states stay, the gateway serves"

# --- the options, refused with one line, nothing served
refused() {   # WORDS ARGS...: an iSCSI ramdisk with ARGS is refused
    words=$1
    shift
    expect_refused "$RAMDISK" "$words" --size 1M --iscsi 127.0.0.1:0 "$@"
}
refused "go together" --port-group 2
refused "go together" --alua 1:ao,2:ano
refused "not a number from 1 to 65535" --port-group 0 --alua 1:ao
refused "not a number from 1 to 65535" --port-group 65536 --alua 1:ao
refused "is not among the groups" --port-group 3 --alua 1:ao,2:ano
refused "listed twice" --port-group 1 --alua 1:ao,1:ano
refused "the state is none of" --port-group 1 --alua 1:fast
refused "the id is not a number" --port-group 1 --alua 1:ao,70000:ano
refused "is not ID:STATE" --port-group 1 --alua 1:ao,
expect_refused "$RAMDISK" "need an iSCSI export" --size 1M \
    --nbd nbd://127.0.0.1:0/x --port-group 1 --alua 1:ao
printf '1:ao,2:fast\n' >"$ALUA"
refused "--alua-file $ALUA: '2:fast': the state is none of" --port-group 1 --alua-file "$ALUA"
: >"$ALUA"
refused "empty" --port-group 1 --alua-file "$ALUA"
refused "No such file" --port-group 1 --alua-file "$WORK/none"
refused "exclude each other" --port-group 1 --alua 1:ao --alua-file "$ALUA"
refused "go together" --alua-file "$ALUA"
ok "bad --port-group, --alua and --alua-file values are refused with one line"
