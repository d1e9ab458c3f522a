#!/bin/sh
# spd-stgtest against correct disks: spd-ramdisk over NBD and iSCSI,
# spd-rawdisk over NBD, a file and a loop device; the same seed giving
# the same requests again; the refusals of a bad command line.
. "$(dirname "$0")/../lib.sh"
need python3

STGTEST=$BUILD/tools/stgtest/spd-stgtest
OUT=$WORK/out.json
ERR=$WORK/err

# A field of the JSON summary: jget a.b.c
jget() {
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(str(v).lower() if isinstance(v, bool) else v)' "$OUT" "$1"
}

# A mixed, verified run that must pass, each kind of request done.
passes() {   # what stgtest-args...
    what=$1
    shift
    status=0
    "$STGTEST" --json "$@" >"$OUT" 2>"$ERR" || status=$?
    [ "$status" -eq 0 ] || { cat "$ERR" "$OUT" >&2; fail "$what: exit $status"; }
    expect_eq "$(jget result)" pass "$what: result"
    for k in read write flush unmap; do
        [ "$(jget ops.$k.count)" -gt 0 ] || fail "$what: no $k done"
    done
    [ "$(jget verified_blocks)" -gt 0 ] || fail "$what: nothing verified"
    ok "$what: $(jget ops.read.count) reads, $(jget ops.write.count) writes, $(jget verified_blocks) blocks verified"
}

MIX="--threads 2 --queue-depth 8 --bs 512-64k --duration 2"

# --- spd-ramdisk over NBD and iSCSI ----------------------------------
start_device "$RAMDISK" --size 32M --nbd nbd://127.0.0.1:0 --iscsi 127.0.0.1:0
NBD=$(serving_uri "$WORK/server.log" nbd://)
ISCSI=$(serving_uri "$WORK/server.log" iscsi://)
passes "ramdisk over NBD" $MIX "$NBD"
expect_eq "$(jget unmap_zeroes)" false "NBD: trimmed blocks are not held to zeros"
passes "ramdisk over iSCSI" $MIX "$ISCSI"
expect_eq "$(jget unmap_zeroes)" true "iSCSI: LBPRZ holds unmapped blocks to zeros"
passes "ramdisk over NBD, sequential, 4k blocks" --sequential --bs 4k \
    --queue-depth 32 --ops 3000 "$NBD"
# NBD trims the ramdisk to zeros: held to it when asked.
passes "ramdisk over NBD, --unmap-zeroes=yes" $MIX --unmap-zeroes yes "$NBD"
stop_device "$SERVER_PID"

# --- the same seed, the same requests --------------------------------
counts() {
    "$STGTEST" --json --seed 42 --ops 400 --queue-depth 1 "$1" >"$OUT" 2>"$ERR" ||
        { cat "$ERR" >&2; fail "seeded run: exit $?"; }
    echo "$(jget ops.read.count) $(jget ops.write.count) $(jget ops.flush.count) $(jget ops.unmap.count) $(jget ops.write.bytes) $(jget verified_blocks)"
}
start_device "$RAMDISK" --size 16M --nbd nbd://127.0.0.1:0
first=$(counts "$(serving_uri "$WORK/server.log" nbd://)")
stop_device "$SERVER_PID"
start_device "$RAMDISK" --size 16M --nbd nbd://127.0.0.1:0
second=$(counts "$(serving_uri "$WORK/server.log" nbd://)")
stop_device "$SERVER_PID"
expect_eq "$second" "$first" "two runs with seed 42 (reads writes flushes unmaps bytes verified)"
ok "seed 42 twice: the same requests ($first)"

# --- spd-rawdisk over NBD ---------------------------------------------
start_device "$RAWDISK" --file "$WORK/raw.img" --size 32M --nbd nbd://127.0.0.1:0
passes "rawdisk over NBD" $MIX "$(serving_uri "$WORK/server.log" nbd://)"
stop_device "$SERVER_PID"

# --- a file: O_DIRECT, io_uring, holes punched -------------------------
truncate -s 32M "$WORK/file.img"
FMIX="--threads 2 --queue-depth 8 --bs 4k-64k --duration 2"
passes "a file" $FMIX "$WORK/file.img"
expect_eq "$(jget unmap_zeroes)" true "a file: punched holes read as zeros"
expect_eq "$(jget block_size)" 4096 "a file: 4096-byte blocks"
passes "a file, 512-byte blocks, --size" $MIX --block-size 512 --size 8M "$WORK/file.img"
expect_eq "$(jget blocks)" 16384 "blocks tested with --size 8M"

# --- a loop device ------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null &&
   LOOP=$(losetup -f --show "$WORK/file.img" 2>/dev/null); then
    at_exit "losetup -d $LOOP"
    "$STGTEST" --json $FMIX "$LOOP" >"$OUT" 2>"$ERR" ||
        { cat "$ERR" >&2; fail "loop device: exit $?"; }
    expect_eq "$(jget result)" pass "loop device: result"
    ok "a loop device ($LOOP): $(jget verified_blocks) blocks verified"
else
    skip_part "a loop device (needs root and losetup)"
fi

# --- the progress line ------------------------------------------------
"$STGTEST" --progress --duration 1.5 "$WORK/file.img" >/dev/null 2>"$ERR" ||
    fail "--progress: exit $?"
grep -q 'read [0-9]*/s' "$ERR" || { cat "$ERR" >&2; fail "no progress line"; }
ok "a progress line with --progress"

# --- --help and --version ----------------------------------------------
"$STGTEST" --help >"$WORK/help" || fail "--help: exit $?"
for word in --threads --queue-depth --bs --mix --duration --ops --seed \
            --unmap-zeroes --json; do
    grep -q -- "$word" "$WORK/help" || fail "--help does not mention $word"
done
"$STGTEST" --version | grep -q '^spd-stgtest [0-9]' || fail "--version"
ok "--help and --version"

# --- a bad command line: exit 2, one line, nothing touched ------------
refused() {   # words args...
    words=$1
    shift
    status=0
    "$STGTEST" "$@" >/dev/null 2>"$ERR" || status=$?
    expect_eq "$status" 2 "exit status of spd-stgtest $*"
    grep -q -- "$words" "$ERR" || { cat "$ERR" >&2; fail "spd-stgtest $*: no '$words'"; }
}
before=$(md5sum <"$WORK/file.img")
refused "no TARGET"
refused "bad --bs" --bs 0 "$WORK/file.img"
refused "not a multiple" --bs 1000 "$WORK/file.img"
refused "bad --mix" --mix read=1,erase=1 "$WORK/file.img"
refused "exclude each other" --ops 5 --duration 5 "$WORK/file.img"
refused "bad --threads" --threads 0 "$WORK/file.img"
refused "not whole blocks" --size 100M "$WORK/file.img"
refused "No such file" "$WORK/missing.img"
refused "nbd" nbd://127.0.0.1:1/
expect_eq "$(md5sum <"$WORK/file.img")" "$before" "the file after refused runs"
ok "bad command lines refused with exit 2, the target untouched"
