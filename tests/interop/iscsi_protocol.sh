#!/bin/sh
# Raw iSCSI PDUs against iscsi_serve (iscsi_protocol.py): login key
# negotiation and failures, malformed PDUs (truncated, oversized, unknown
# opcode, CmdSN outside the window, bad digests, Data-Out beyond what was
# asked), missing LUNs, Text, NOP, task management, logout,
# reinstatement. Then the target must still serve, and stop cleanly.
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
