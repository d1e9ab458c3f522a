#!/bin/sh
# libiscsi's conformance suite (iscsi-test-cu -t ALL) against iscsi_serve,
# in its multipath form (the URL twice: two sessions, two I_T nexuses, to
# the same LUN, as reservations, unit attentions and COMPARE AND WRITE
# races need): 512-byte and 4096-byte blocks with destructive tests and
# SANITIZE, and a write-protected unit without them. Prints passed/failed/
# skipped for each and fails when a test fails that
# iscsi_conformance.baseline does not list (kept empty: a failure is
# fixed, not listed).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/iscsi_lib.sh"
need iscsi-test-cu python3 timeout comm
HERE=$(dirname "$0")
BASELINE=$HERE/iscsi_conformance.baseline

run_suite() {   # config block_length [serve options] -- [iscsi-test-cu options]
    config=$1
    block=$2
    shift 2
    serve_opts=""
    while [ "$1" != "--" ]; do
        serve_opts="$serve_opts $1"
        shift
    done
    shift
    # shellcheck disable=SC2086
    start_iscsi 64 "$block" $serve_opts
    port=$ISCSI_PORT
    log=$WORK/cu.$config.log
    # Its exit status says whether tests failed: the log says which.
    url=$(iscsi_url "$port")
    timeout 600 iscsi-test-cu "$@" -t ALL "$url" "$url" >"$log" 2>&1 ||
        true
    grep -q '^Run Summary' "$log" ||
        { tail -20 "$log" >&2; fail "$config: iscsi-test-cu did not finish"; }
    stop_iscsi
    python3 "$HERE/iscsi_cunit.py" "$log" >"$WORK/result.$config" ||
        fail "$config: cannot read the CUnit output ($log)"
    echo "$config: $(head -1 "$WORK/result.$config")  (iscsi-test-cu $* -t ALL URL URL)"
    sed -n 's/^FAILED /'"$config"' /p' "$WORK/result.$config" | sort \
        >"$WORK/failed.$config"
    grep "^$config " "$BASELINE" | sort >"$WORK/known.$config" || true
    new=$(comm -23 "$WORK/failed.$config" "$WORK/known.$config")
    gone=$(comm -13 "$WORK/failed.$config" "$WORK/known.$config")
    [ -z "$gone" ] || echo "$config: now passing, take out of the baseline: $gone"
    if [ -n "$new" ]; then
        echo "$new" | sed 's/^/new failure: /' >&2
        FAILED_CONFIGS="$FAILED_CONFIGS $config"
    fi
}

FAILED_CONFIGS=""
run_suite 512 512 -- --dataloss --allow-sanitize
run_suite 4096 4096 -- --dataloss --allow-sanitize
run_suite wp 512 --write-protect --
[ -z "$FAILED_CONFIGS" ] || fail "failures beyond the baseline in:$FAILED_CONFIGS"
ok "iscsi-test-cu: no failure beyond the baseline"
