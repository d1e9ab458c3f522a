# lib.sh - shared by the shell tests: a work directory cleaned up on exit,
# servers started in the background and stopped by pid, readiness waits
# with a time limit, and assertions that name what failed.
#
# A test sources this, then calls the helpers. Exit status: 0 passed,
# 1 failed, 77 skipped (meson's convention). A test that cannot run here
# (a tool, a kernel module or a privilege missing) skips with the reason;
# it never passes without having run:
#
#   need CMD...             skip unless every command is installed
#   need_root WHY           skip unless running as root
#   skip REASON             skip now
#   skip_part REASON        go on without one part; the test ends SKIP
#                           (77, with the reasons) rather than passing
#
# Servers: start_device / stop_device (device programs, by pid file),
# serving_uri LOGFILE PREFIX (the address a device says it serves),
# wait_until SECONDS CMD..., free_port.

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
SKIPPED_PARTS=""

cleanup() {
    status=$?
    set +e
    eval "$CLEANUP"
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    rm -rf "$WORK"
    if [ "$status" -eq 0 ] && [ -n "$SKIPPED_PARTS" ]; then
        printf 'SKIP - not run here:%s\n' "$SKIPPED_PARTS"
        status=77
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Run a command at cleanup, last registered first.
at_exit() { CLEANUP="$*; $CLEANUP"; }

ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*" >&2; exit 1; }
skip() { echo "SKIP - $*"; exit 77; }

skip_part() { echo "SKIP - $*"; SKIPPED_PARTS="$SKIPPED_PARTS [$*]"; }

need() {
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || skip "$cmd is not installed"
    done
}

need_root() { [ "$(id -u)" -eq 0 ] || skip "needs root: $*"; }

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

# serving_uri LOGFILE PREFIX: wait (at most 30 s) until a device program
# has written its "PROGRAM: serving URI" line for an export whose URI
# starts with PREFIX (nbd://, nbd+unix://, iscsi://) into LOGFILE, and
# print that URI: the real address, with the port the system chose when
# port 0 was asked for. Fails the test when no such line comes.
#   start_device "$RAMDISK" --size 16M --nbd nbd://127.0.0.1:0
#   URI=$(serving_uri "$WORK/server.log" nbd://)
serving_uri() {
    wait_until 30 serving_line "$1" "$2" >/dev/null ||
        { cat "$1" >&2; fail "no '$2' serving line in $1"; }
    serving_line "$1" "$2"
}

serving_line() {   # LOGFILE PREFIX: the first matching URI, or status 1
    awk -v p="$2" '$2 == "serving" && index($3, p) == 1 { print $3; f = 1; exit }
                   END { exit !f }' "$1"
}

# A TCP port no socket uses now, below the kernel's ephemeral ports (so
# no client connection or TIME_WAIT left by earlier tests holds it).
free_port() {
    while :; do
        port=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000 ))
        ss -Htan "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
    done
}

expect_eq() {   # got want what
    [ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}

# expect_refused PROGRAM WORDS ARGS...: PROGRAM ARGS exits 2 with one line
# on stderr that says WORDS, and serves nothing.
expect_refused() {
    program=$1 words=$2
    shift 2
    status=0
    "$program" "$@" >"$WORK/refused.out" 2>"$WORK/refused.err" </dev/null || status=$?
    expect_eq "$status" 2 "exit status of $(basename "$program") $*"
    grep -q -- "$words" "$WORK/refused.err" ||
        { cat "$WORK/refused.err" >&2; fail "$*: the message does not say '$words'"; }
    expect_eq "$(wc -l <"$WORK/refused.err")" 1 "lines of the message for $*"
    ! grep -q ": serving " "$WORK/refused.err" "$WORK/refused.out" ||
        fail "$*: something was served"
}
