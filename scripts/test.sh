#!/bin/sh
# Build Spd twice (plain, and with AddressSanitizer + UBSan) and run every
# test in both. Prints one closing line: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
scripts/setup-debian.sh || exit 1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

passed=0 failed=0
run_suite() {   # build dir, label, sanitize (0 or 1)
    if ! SPD_SANITIZE=$3 scripts/build.sh "$1"; then
        echo "$2: build failed"
        failed=$((failed + 1))
        return
    fi
    meson test -C "$1" --print-errorlogs --num-processes 2 >"$1/test-output.txt" 2>&1
    status=$?
    grep -E '^ *[0-9]+/[0-9]+ ' "$1/test-output.txt" | sed "s/^/$2: /"
    ok=$(grep -cE '^ *[0-9]+/[0-9]+ .* (OK|SKIP) ' "$1/test-output.txt")
    bad=$(grep -cE '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) ' "$1/test-output.txt")
    if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then
        cat "$1/test-output.txt"
        bad=1
    fi
    [ "$bad" -eq 0 ] || sed -n '/^Summary of Failures/,$p' "$1/test-output.txt"
    passed=$((passed + ok))
    failed=$((failed + bad))
}

run_suite build plain 0
run_suite build-asan asan+ubsan 1

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
