#!/bin/sh
# Raw iSCSI PDUs against iscsi_serve (iscsi_protocol.py): login key
# negotiation and failures, long login answers split with C, malformed
# PDUs (truncated, oversized, unknown opcode, CmdSN outside the window or
# after a gap (commands and other requests), bad digests, Data-Out beyond what was asked or outside its
# R2T), missing LUNs, Text, NOP, task management, logout, reinstatement.
# Then the target must still serve, and stop cleanly. Last, with CHAP:
# failed logins answered later each time and logged, and logins in
# progress limited per address.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/iscsi_lib.sh"
need python3 iscsi-inq

start_iscsi 16 512
port=$ISCSI_PORT
python3 "$(dirname "$0")/iscsi_protocol.py" "$port" "$IQN" ||
    fail "iscsi_protocol.py"
iscsi-inq "$(iscsi_url "$port")" | grep -q DIRECT_ACCESS ||
    fail "a fresh initiator after all that"
ok "the target still serves a fresh initiator"
stop_iscsi
ok "and stops cleanly"

umask 077
printf 'alice alice-secret-123\n' >"$WORK/secrets"
start_iscsi 16 512 --chap "$WORK/secrets"
python3 "$(dirname "$0")/iscsi_protocol.py" "$ISCSI_PORT" "$IQN" \
    chap alice alice-secret-123 || fail "iscsi_protocol.py (CHAP)"
grep -q 'authentication failed for user "alice" from 127\.0\.0\.1' \
    "$ISCSI_LOG" || { cat "$ISCSI_LOG" >&2; fail "CHAP failures are logged"; }
[ "$(grep -c 'refused a login from 127\.0\.0\.1' "$ISCSI_LOG")" -eq 1 ] ||
    { cat "$ISCSI_LOG" >&2; fail "a refused login is logged once"; }
ok "CHAP failures and refused logins are logged"
stop_iscsi
ok "and stops cleanly"
