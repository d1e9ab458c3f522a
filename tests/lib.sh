# lib.sh - shared by the shell tests: a work directory cleaned up on exit,
# servers started in the background and stopped by pid, readiness waits
# with a time limit, and assertions that name what failed.
#
# A test sources this, then calls the helpers. Exit status: 0 passed,
# 1 failed, 77 skipped (meson's convention).

set -eu
# Debian's python3 first: nbdsh runs whatever python3 comes first.
PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
export PATH

: "${BUILD:?BUILD must name the meson build directory}"
RAMDISK=$BUILD/devices/spd-ramdisk
RAWDISK=$BUILD/devices/spd-rawdisk

WORK=$(mktemp -d /tmp/spd-test.XXXXXX)
CLEANUP=""
PIDS=""

cleanup() {
    status=$?
    set +e
    eval "$CLEANUP"
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
    exit $status
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Run a command at cleanup, last registered first.
at_exit() { CLEANUP="$*; $CLEANUP"; }

ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*" >&2; exit 1; }
skip() { echo "SKIP - $*"; exit 77; }

need() {
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || skip "$cmd is not installed"
    done
}

# Wait until a command succeeds, at most $1 seconds.
wait_until() {
    limit=$1
    shift
    deadline=$(( $(date +%s) + limit ))
    until "$@" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# Start a device program in the background with a pid file; wait until it
# is serving (it writes the pid file only then). Sets SERVER_PID.
start_device() {
    pidfile=$WORK/server.$$.$(date +%s%N).pid
    "$@" --pid-file "$pidfile" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    PIDS="$SERVER_PID $PIDS"
    if ! wait_until 30 test -s "$pidfile"; then
        cat "$WORK/server.log" >&2
        fail "server did not start: $*"
    fi
}

# Stop a server by pid and check that it exited cleanly (status 0).
stop_device() {
    kill -TERM "$1"
    status=0
    wait "$1" || status=$?
    PIDS=$(echo "$PIDS" | sed "s/\b$1\b//")
    [ "$status" -eq 0 ] || { cat "$WORK/server.log" >&2; fail "server exited with $status"; }
}

# A TCP port that nothing listens on now.
free_port() {
    while :; do
        port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000 ))
        ss -Htln "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
    done
}

expect_eq() {   # got want what
    [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}
