# ublk.sh - sourced by the ublk cases in cases/: a device program serving
# its unit as /dev/ublkb0 through the kernel's ublk driver.
. "$(dirname "$0")/../lib.sh"

UBLK_DEV=/dev/ublkb0

# ublk_serve PROGRAM ARGS...: serve as /dev/ublkb0 and wait for the disk;
# prints what the kernel made of it.
ublk_serve() {
    start_device "$@" --ublk=0
    wait_until 30 test -b "$UBLK_DEV" ||
        { cat "$WORK/server.log" >&2; fail "no $UBLK_DEV"; }
    q=/sys/block/ublkb0/queue
    echo "ublkb0: $(cat /sys/block/ublkb0/size) sectors," \
        "logical block $(cat $q/logical_block_size)," \
        "physical $(cat $q/physical_block_size)," \
        "max $(cat $q/max_sectors_kb) KiB, discard max $(cat $q/discard_max_bytes)," \
        "write cache: $(cat $q/write_cache), fua $(cat $q/fua)," \
        "read-only $(cat /sys/block/ublkb0/ro)"
}

# The block size the kernel took for /dev/ublkb0 must be $1.
ublk_expect_block() {
    expect_eq "$(cat /sys/block/ublkb0/queue/logical_block_size)" "$1" "logical block size"
    expect_eq "$(cat /sys/block/ublkb0/queue/physical_block_size)" "$1" "physical block size"
}

# Stop the server: it exits 0 and the disk is gone.
ublk_stop() {
    stop_device "$SERVER_PID"
    wait_until 10 test ! -e "$UBLK_DEV" || fail "$UBLK_DEV still there after the server stopped"
    ok "server stopped cleanly, $UBLK_DEV removed"
}

# fio writes 1 MiB blocks sequentially over 32 MiB of block device $1 with
# crc32c checksums and reads them back.
fio_seq_verify() {
    t0=$(date +%s)
    fio --name=seq --filename="$1" --direct=1 --ioengine=libaio \
        --rw=write --bs=1M --iodepth=4 --size=32M --verify=crc32c \
        --verify_fatal=1 --do_verify=1 --output="$WORK/fio" >/dev/null 2>&1 ||
        { cat "$WORK/fio"; fail "fio sequential verify on $1"; }
    grep -q 'err= 0' "$WORK/fio" || { cat "$WORK/fio"; fail "fio reported errors on $1"; }
    ok "fio: 32 MiB of 1 MiB sequential writes verified with crc32c on $1 ($(( $(date +%s) - t0 )) s)"
}

# Discard reaches spd-rawdisk's image $1: 32 MiB written to /dev/ublkb0,
# then discarded, leave the file's allocation smaller by about as much, and
# read back as zeros.
ublk_discard_check() {
    dd if=/dev/urandom of="$UBLK_DEV" bs=1M count=32 oflag=direct 2>/dev/null ||
        fail "writing 32 MiB to $UBLK_DEV"
    before=$(du -k "$1" | cut -f1)
    blkdiscard -o 0 -l 32M "$UBLK_DEV" || fail "blkdiscard $UBLK_DEV"
    after=$(du -k "$1" | cut -f1)
    [ $((before - after)) -ge 30000 ] ||
        fail "discard did not unmap: the image held $before KiB, now $after KiB"
    cmp -n 33554432 "$UBLK_DEV" /dev/zero || fail "discarded blocks do not read as zeros"
    ok "discard: the image's allocation went from $before to $after KiB; zeros read back"
}
