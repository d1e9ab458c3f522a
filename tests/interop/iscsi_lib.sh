# iscsi_lib.sh - sourced by the iSCSI interop tests after tests/lib.sh:
# start iscsi_serve (the test target program) and stop it by pid.

ISERVE=$BUILD/tests/iscsi_serve
IQN=iqn.2026-01.org.example.spd:disk
# Built with the tests (meson's depends): missing is a failure, not a skip.
[ -x "$ISERVE" ] || fail "$ISERVE is not built"

# start_iscsi SIZE_MB BLOCK_LENGTH [iscsi_serve options...]: serve a
# fresh in-memory target on 127.0.0.1 at a port the system picks; sets
# ISCSI_PORT (from its "ready iscsi://127.0.0.1:PORT" line), ISCSI_PID,
# ISCSI_LOG.
start_iscsi() {
    ISCSI_LOG=$(mktemp "$WORK/iscsi.XXXXXX")
    "$ISERVE" "127.0.0.1:0" "$IQN" "$@" >"$ISCSI_LOG" 2>&1 &
    ISCSI_PID=$!
    PIDS="$ISCSI_PID $PIDS"
    if ! wait_until 30 grep -q '^ready' "$ISCSI_LOG"; then
        cat "$ISCSI_LOG" >&2
        fail "iscsi_serve did not start: $*"
    fi
    ISCSI_PORT=$(sed -n 's/^ready iscsi:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' "$ISCSI_LOG")
    [ -n "$ISCSI_PORT" ] || { cat "$ISCSI_LOG" >&2; fail "iscsi_serve gave no port"; }
}

# stop_iscsi: SIGTERM, and the program must exit 0 (in-flight commands
# finished, nothing crashed).
stop_iscsi() {
    kill -TERM "$ISCSI_PID"
    status=0
    wait "$ISCSI_PID" || status=$?
    PIDS=$(echo "$PIDS" | sed "s/\b$ISCSI_PID\b//")
    [ "$status" -eq 0 ] || { cat "$ISCSI_LOG" >&2; fail "iscsi_serve exited with $status"; }
}

# The iSCSI URL of LUN $2 (default 0) on port $1.
iscsi_url() {
    echo "iscsi://127.0.0.1:$1/$IQN/${2:-0}"
}
