#!/bin/sh
# spd-ramdisk as a user runs it: the self-check with 512- and 4096-byte
# blocks, write protection, the identity options, and the command line's
# refusals (exit 2, the option named).
. "$(dirname "$0")/../lib.sh"

OUT=$WORK/out
ERR=$WORK/err

# Run the self-check with the given options; it must exit 0 with no
# failed step. Its output stays in $OUT.
check_passes() {
    status=0
    "$RAMDISK" "$@" --check >"$OUT" 2>"$ERR" || status=$?
    [ "$status" -eq 0 ] || { cat "$OUT" "$ERR" >&2; fail "--check $*: exit $status"; }
    grep -q '^self-check: [0-9]* ok, 0 failed' "$OUT" ||
        { cat "$OUT" >&2; fail "--check $*: a step failed"; }
}

# The output holds a line matching the pattern.
expect_line() {   # pattern what
    grep -q -- "$1" "$OUT" || { cat "$OUT" >&2; fail "$2: no line matching '$1'"; }
}

# The options must be refused with exit 2 and a message naming $1.
expect_usage() {  # words-in-message args...
    words=$1
    shift
    status=0
    "$RAMDISK" "$@" >"$OUT" 2>"$ERR" || status=$?
    expect_eq "$status" 2 "exit status of spd-ramdisk $*"
    grep -q -- "$words" "$ERR" || { cat "$ERR" >&2; fail "spd-ramdisk $*: message does not name '$words'"; }
    [ "$(wc -l <"$ERR")" -eq 1 ] || { cat "$ERR" >&2; fail "spd-ramdisk $*: message is not one line"; }
}

check_passes
expect_line 'READ CAPACITY(16): 131072 blocks x 512 bytes = 64 MiB' "default size"
expect_line 'LBPME 1 .*LBPRZ 1' "thin provisioning"
expect_line 'WCE 1' "write cache"
expect_line 'READ(10) of 3 regions: the data matches' "read back"
expect_line 'UNMAP of the 3 regions, then READ(16): zeros' "unmap"
expect_line 'ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE' "read past the end"
# The check gives back what it wrote: a fresh ramdisk ends empty.
expect_line '^spd-ramdisk: 0 bytes of memory allocated' "memory after the check"
ok "--check passes on a 64 MiB disk of 512-byte blocks"

check_passes --size 256M --block-length 4096
expect_line 'READ CAPACITY(16): 65536 blocks x 4096 bytes = 256 MiB' "4096-byte blocks"
ok "--check passes on a 256 MiB disk of 4096-byte blocks"

check_passes -c 3 -l 65536
expect_line 'READ CAPACITY(16): 3 blocks x 65536 bytes' "tiny disk"
ok "--check passes on a disk of three 64 KiB blocks"

check_passes -r
expect_line 'WP 1 (write protected)' "mode page WP"
expect_line 'WRITE(16) on the write-protected unit: CHECK CONDITION, DATA PROTECT, WRITE PROTECTED' \
    "write on a write-protected unit"
expect_line '^  skipped WRITE and UNMAP' "writes skipped"
ok "-r (--read-only): --check passes and a write gets DATA PROTECT"

check_passes --no-unmap --no-cache
expect_line 'LBPME 0' "--no-unmap"
expect_line 'WCE 0' "--no-cache"
expect_line '^  skipped UNMAP: the unit offers no unmap' "unmap skipped"
ok "--no-unmap and --no-cache reach the unit"

uuid=0123abcd-4567-89ab-cdef-0123456789ab
check_passes --uuid $uuid --product-id 'Test disk' --product-revision 2.5
expect_line 'serial number: 0123abcd456789abcdef0123456789ab' "--uuid"
expect_line 'product "Test disk", revision "2.5"' "--product-id/--product-revision"
ok "--uuid, --product-id and --product-revision reach the unit"

check_passes --debug-log "$WORK/debug.log" --threads 3
[ -s "$WORK/debug.log" ] || fail "--debug-log wrote nothing"
ok "--debug-log writes the request log ($(wc -l <"$WORK/debug.log") lines)"

expect_usage '--block-length 1000' --block-length 1000 --check
expect_usage '--size abc' --size abc --check
expect_usage '--bogus' --bogus --check
expect_usage '--block-count 0' --block-count 0 --check
expect_usage '--uuid not-a-uuid' --uuid not-a-uuid --check
expect_usage '--debug nonsense' --debug nonsense --check
expect_usage '--threads many' --threads many --check
expect_usage '--product-id' --product-id 'far too long a product name' --check
expect_usage 'disagree' --size 1M --block-count 3 --check
expect_usage 'not a multiple' --size 1000 --check
expect_usage 'no export given'
ok "bad options exit 2 with a one-line message naming the option"

"$RAMDISK" --help >"$OUT" || fail "--help: exit $?"
for option in block-count block-length size product-id product-revision \
        write-protect no-cache no-unmap uuid debug debug-log threads check \
        help version; do
    grep -q -- "--$option\\b" "$OUT" || fail "--help does not list --$option"
done
tr -s ' \n' '  ' <"$OUT" | grep -q -- '--size SIZE .*(default: 64M)' ||
    fail "--help does not show the default size"
ok "--help exits 0 and lists every option"

"$RAMDISK" --version >"$OUT" || fail "--version: exit $?"
expect_line '^spd-ramdisk [0-9]' "--version"
expect_eq "$(sed -n 's/^spd-ramdisk //p' "$OUT")" "$(sed -n 's/^libspd //p' "$OUT")" "program and library versions"
ok "--version"
