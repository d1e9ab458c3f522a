#!/bin/sh
# libiscsi's conformance suite (iscsi-test-cu -t ALL) against iscsi_serve,
# in its multipath form (the URL twice: two sessions, two I_T nexuses, to
# the same LUN, as reservations, unit attentions and COMPARE AND WRITE
# races need): 512-byte blocks in 4096-byte physical ones, and 4096-byte
# blocks, with destructive tests and SANITIZE, and a write-protected unit.
# Prints passed/failed/skipped for each and fails when a test fails that
# iscsi_conformance.baseline does not list (a failure of Spd is fixed,
# not listed; only a wrong test is, with the reason).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/iscsi_lib.sh"
need iscsi-test-cu python3 timeout comm
HERE=$(dirname "$0")
BASELINE=$HERE/iscsi_conformance.baseline

# One run of iscsi-test-cu against the target on $port: test spec $1,
# the options after it; its parsed result appended to $WORK/result.$config.
run_cu() {
    spec=$1
    shift
    log=$WORK/cu.$config.$spec.log
    url=$(iscsi_url "$port")
    # Its exit status says whether tests failed: the log says which.
    timeout 600 iscsi-test-cu "$@" -t "$spec" "$url" "$url" >"$log" 2>&1 ||
        true
    grep -q '^Run Summary' "$log" ||
        { tail -20 "$log" >&2; fail "$config: iscsi-test-cu did not finish"; }
    python3 "$HERE/iscsi_cunit.py" "$log" >>"$WORK/result.$config" ||
        fail "$config: cannot read the CUnit output ($log)"
}

# run_suite config block_length [serve options] -- [iscsi-test-cu options]
#           [-- test specs: ALL when none]
run_suite() {
    config=$1
    block=$2
    shift 2
    serve_opts=""
    while [ "$1" != "--" ]; do
        serve_opts="$serve_opts $1"
        shift
    done
    shift
    cu_opts=""
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        cu_opts="$cu_opts $1"
        shift
    done
    [ $# -gt 0 ] && shift
    specs=${*:-ALL}
    # shellcheck disable=SC2086
    start_iscsi 64 "$block" $serve_opts
    port=$ISCSI_PORT
    : >"$WORK/result.$config"
    for spec in $specs; do
        # shellcheck disable=SC2086
        run_cu "$spec" $cu_opts
    done
    stop_iscsi
    counts=$(awk '/^passed/ { p += $2; f += $4; s += $6; t += $8 }
                  END { printf "passed %d failed %d skipped %d total %d", p, f, s, t }' \
             "$WORK/result.$config")
    echo "$config: $counts  (iscsi-test-cu$cu_opts -t $(echo $specs | sed 's/ /,/g') URL URL)"
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
# 512-byte blocks in 4096-byte physical ones (512e), so that the tests
# for a physical block of several logical ones (LBPPB > 1) run too.
run_suite 512 512 --physical-block-length 4096 -- --dataloss --allow-sanitize
run_suite 4096 4096 -- --dataloss --allow-sanitize
# A write-protected unit: the suite's test of one (ReadOnly: every
# command that writes fails WRITE PROTECTED, reads work). The other tests
# want their writes to succeed (with --dataloss) or skip them and then
# assert on their outcome (without): no full run means anything there.
run_suite wp 512 --write-protect -- --dataloss -- ALL.ReadOnly
[ -z "$FAILED_CONFIGS" ] || fail "failures beyond the baseline in:$FAILED_CONFIGS"
ok "iscsi-test-cu: no failure beyond the baseline"
