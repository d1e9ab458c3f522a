#!/bin/sh
# Build Spd twice (plain, and with AddressSanitizer + UBSan) and run every
# test in both; the kernel tests in a VM (suite vm, slow under emulation)
# run once, on the plain build. A test that could not run here (a tool or a privilege
# missing) is SKIP: listed with its reason, not counted as passed, and not
# a failure. Prints one closing line: "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/.."
scripts/setup-debian.sh || exit 1

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

passed=0 failed=0 skipped=0
run_suite() {   # build dir, label, sanitize (0 or 1), meson test options...
    if ! SPD_SANITIZE=$3 scripts/build.sh "$1"; then
        echo "$2: build failed"
        failed=$((failed + 1))
        return
    fi
    out=$1/test-output.txt
    dir=$1 label=$2
    shift 3
    meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" >"$out" 2>&1
    status=$?
    grep -E '^ *[0-9]+/[0-9]+ ' "$out" | sed "s/^/$label: /"
    ok=$(grep -cE '^ *[0-9]+/[0-9]+ .* OK ' "$out")
    skip=$(grep -cE '^ *[0-9]+/[0-9]+ .* SKIP ' "$out")
    bad=$(grep -cE '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) ' "$out")
    if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then
        cat "$out"
        bad=1
    fi
    [ "$bad" -eq 0 ] || sed -n '/^Summary of Failures/,$p' "$out"
    [ "$skip" -eq 0 ] || skip_reasons "$dir" "$label"
    passed=$((passed + ok))
    failed=$((failed + bad))
    skipped=$((skipped + skip))
}

# Each skipped test's name and the reasons it gave (its lines that say
# SKIP), from meson's log.
skip_reasons() {   # build dir, label
    python3 - "$1/meson-logs/testlog.json" "$2" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["result"] != "SKIP":
        continue
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    why = [l.strip() for l in out.splitlines() if "SKIP" in l]
    print(f"{sys.argv[2]}: skipped {t['name']}: " + ("; ".join(why) or "(no reason given)"))
PY
}

run_suite build plain 0
run_suite build-asan asan+ubsan 1 --no-suite vm

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
