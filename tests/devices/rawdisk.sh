#!/bin/sh
# spd-rawdisk as a user runs it: creating sparse images, the self-check
# leaving the data as it found it, the UUID kept across runs, partition
# tables on new images, and the refusals that protect existing data.
. "$(dirname "$0")/../lib.sh"

OUT=$WORK/out
ERR=$WORK/err

# Run the self-check; it must exit 0 with no failed step. Output in $OUT.
check_passes() {
    status=0
    "$RAWDISK" "$@" --check >"$OUT" 2>"$ERR" || status=$?
    [ "$status" -eq 0 ] || { cat "$OUT" "$ERR" >&2; fail "--check $*: exit $status"; }
    grep -q '^self-check: [0-9]* ok, 0 failed' "$OUT" ||
        { cat "$OUT" >&2; fail "--check $*: a step failed"; }
}

expect_line() {   # pattern what
    grep -q -- "$1" "$OUT" || { cat "$OUT" "$ERR" >&2; fail "$2: no line matching '$1'"; }
}

# Must exit 2 with a message holding the words.
expect_usage() {  # words args...
    words=$1
    shift
    status=0
    "$RAWDISK" "$@" >"$OUT" 2>"$ERR" || status=$?
    expect_eq "$status" 2 "exit status of spd-rawdisk $*"
    grep -q -- "$words" "$ERR" || { cat "$ERR" >&2; fail "spd-rawdisk $*: message does not name '$words'"; }
}

serial() { sed -n 's/.*unit serial number: //p' "$OUT"; }

# --- a new image: created sparse, of the size asked for --------------
img=$WORK/new.img
check_passes --file "$img" --size 64M
expect_eq "$(stat -c %s "$img")" 67108864 "size of the new image"
allocated=$(( $(stat -c %b "$img") * $(stat -c %B "$img") ))
[ "$allocated" -lt 1048576 ] || fail "new image is not sparse: $allocated bytes allocated"
expect_line 'READ CAPACITY(16): 131072 blocks x 512 bytes = 64 MiB' "capacity"
expect_line 'UNMAP of the 3 regions, then READ(16): zeros (LBPRZ)' "hole punching"
ok "creates a sparse 64 MiB image ($allocated bytes allocated after --check)"

check_passes --file "$WORK/new4k.img" --size 64M --block-length 4096
expect_line 'READ CAPACITY(16): 16384 blocks x 4096 bytes' "4096-byte blocks"
ok "--check passes on an image of 4096-byte blocks"

# --- existing data survives the self-check ---------------------------
data=$WORK/data.img
dd if=/dev/urandom of="$data" bs=1M count=8 status=none
before=$(sha256sum <"$data")
check_passes --file "$data"
expect_line 'READ CAPACITY(16): 16384 blocks x 512 bytes = 8 MiB' "size from the file"
expect_line 'restored the blocks the check overwrote (3 regions by WRITE(16)' "restore"
expect_eq "$(sha256sum <"$data")" "$before" "content after --check"
ok "--check on random data leaves the file unchanged (sha256)"

check_passes --file "$data" --write-protect
expect_line 'WRITE(16) on the write-protected unit: CHECK CONDITION, DATA PROTECT' "write protect"
expect_eq "$(sha256sum <"$data")" "$before" "content after a write-protected --check"
ok "--write-protect: --check passes, writes get DATA PROTECT, nothing changes"

# --- the UUID stays with the image -----------------------------------
check_passes --file "$data"
first=$(serial)
check_passes --file "$data"
[ -n "$first" ] || fail "no serial number line"
expect_eq "$(serial)" "$first" "serial number of a second run"
check_passes --file "$data" --uuid 11111111-2222-3333-4444-555555555555
expect_eq "$(serial)" 11111111222233334444555555555555 "serial number with --uuid"
check_passes --file "$data"
expect_eq "$(serial)" "$first" "serial number after a run with --uuid"
ok "the serial number is stable across runs ($first) and --uuid overrides it"

# --- partition tables, only on new images ----------------------------
if command -v sfdisk >/dev/null 2>&1; then
    check_passes --file "$WORK/gpt.img" --size 100M --partition gpt
    sfdisk --json "$WORK/gpt.img" >"$OUT" || fail "sfdisk --json"
    expect_line '"label": "gpt"' "GPT label"
    expect_eq "$(grep -c '"node":' "$OUT")" 1 "partitions in the new GPT"
    expect_line '"start": 2048,' "partition start"
    expect_line '"size": 202719,' "partition size"
    sfdisk --verify "$WORK/gpt.img" >/dev/null || fail "sfdisk --verify"
    ok "--partition gpt on a new image gives one partition spanning the disk"

    check_passes --file "$WORK/mbr.img" --size 100M --partition mbr
    sfdisk --json "$WORK/mbr.img" >"$OUT" || fail "sfdisk --json"
    expect_line '"label": "dos"' "MBR label"
    expect_eq "$(grep -c '"node":' "$OUT")" 1 "partitions in the new MBR"
    expect_line '"size": 202752,' "partition size"
    ok "--partition mbr on a new image gives one partition spanning the disk"
else
    skip_part "--partition: sfdisk is not installed"
fi

expect_usage 'already exists' --file "$data" --partition gpt --check
expect_eq "$(sha256sum <"$data")" "$before" "content after a refused --partition"
ok "--partition on an existing image is refused and changes nothing"

# --- refusals --------------------------------------------------------
expect_usage '--file' --size 1M --check
expect_usage 'give --size' --file "$WORK/absent.img" --check
[ ! -e "$WORK/absent.img" ] || fail "a refused run left $WORK/absent.img behind"
expect_usage 'not the size given' --file "$data" --size 4M --check
expect_usage '--partition exfat' --file "$WORK/x.img" --size 1M --partition exfat --check
expect_usage '--block-length 1000' --file "$data" --block-length 1000 --check
expect_usage 'no export given' --file "$data"
ok "missing --file, a missing size, a disagreeing size and bad values exit 2"

"$RAWDISK" --help >"$OUT" || fail "--help: exit $?"
for option in file partition block-count block-length size uuid check; do
    grep -q -- "--$option\\b" "$OUT" || fail "--help does not list --$option"
done
ok "--help exits 0 and lists the options"

# --- no extended attributes, no hole punching (ramfs has neither) ----
fs=$WORK/ramfs
mkdir "$fs"
if [ "$(id -u)" -eq 0 ] && mount -t ramfs ramfs "$fs" 2>/dev/null; then
    at_exit "umount '$fs'"
    check_passes --file "$fs/disk.img" --size 16M
    grep -q 'the UUID is derived from the path' "$ERR" || fail "no note of the derived UUID"
    expect_line 'LBPME 0' "unmap turned off without hole punching"
    first=$(serial)
    check_passes --file "$fs/disk.img"
    expect_eq "$(serial)" "$first" "derived serial number of a second run"
    ok "on ramfs: the UUID is derived from the path, stable; unmap is off"
else
    skip_part "ramfs sub-check: needs root and mount"
fi

# --- one process serves an image at a time ------------------------------
locked=$WORK/locked.img
start_device "$RAWDISK" --file "$locked" --size 4M --nbd "nbd+unix:///?socket=$WORK/lock1.sock"
first=$SERVER_PID
for mode in "" --read-only; do
    status=0
    "$RAWDISK" --file "$locked" $mode --nbd "nbd+unix:///?socket=$WORK/lock2.sock" \
        >"$OUT" 2>"$ERR" || status=$?
    expect_eq "$status" 1 "exit status of a second spd-rawdisk $mode on a served image"
    grep -q "$locked is in use by process $first" "$ERR" ||
        { cat "$ERR" >&2; fail "the refusal does not name the holder's pid $first"; }
done
[ ! -e "$WORK/lock2.sock" ] || fail "the refused run listened"
kill -0 "$first" || fail "the first server died"
if command -v nbdinfo >/dev/null; then
    nbdinfo --size "nbd+unix:///?socket=$WORK/lock1.sock" >"$OUT" ||
        fail "the first server no longer answers"
    expect_eq "$(cat "$OUT")" 4194304 "size the first server still serves"
else
    skip_part "the first server still answering: needs nbdinfo"
fi
stop_device "$first"
check_passes --file "$locked" --read-only
ok "a second spd-rawdisk (read-write or read-only) is refused, naming pid $first; the first keeps serving"

# --- a run that fails to start changes nothing ---------------------------
: >"$WORK/empty.img"
nowhere="nbd+unix:///?socket=$WORK/no-such-folder/s.sock"
status=0
"$RAWDISK" --file "$WORK/empty.img" --size 4M --nbd "$nowhere" >"$OUT" 2>"$ERR" || status=$?
expect_eq "$status" 1 "exit status when the export cannot start"
expect_eq "$(stat -c %s "$WORK/empty.img")" 0 "size of the empty image after a failed start"
if command -v getfattr >/dev/null; then
    [ -z "$(getfattr --only-values -n user.spd.uuid "$WORK/empty.img" 2>/dev/null)" ] ||
        fail "a failed start left user.spd.uuid on the empty image"
fi
status=0
"$RAWDISK" --file "$WORK/never.img" --size 4M --partition gpt --nbd "$nowhere" \
    >"$OUT" 2>"$ERR" || status=$?
expect_eq "$status" 1 "exit status when the export cannot start (new image)"
[ ! -e "$WORK/never.img" ] || fail "a failed start left a new image behind"
ok "a failed start leaves an empty image at 0 bytes and creates no new one"
