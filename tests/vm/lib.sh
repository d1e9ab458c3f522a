# lib.sh - sourced by the tests in cases/, which run inside the guest (as
# root, on a Linux 6.12 kernel with nbd, iscsi_tcp and ublk_drv): the
# shared shell helpers of tests/lib.sh, plus what the guest's tests share.
. "$(dirname "$0")/../../lib.sh"

# A file tree on the file system mounted at $1, its checksums kept in
# $WORK/sums: files of many sizes in a few directories.
fill_tree() {
    i=0
    while [ $i -lt 60 ]; do
        d=$1/dir$((i % 4))
        mkdir -p "$d"
        head -c $(( (i * 7919) % 150000 + 1 )) /dev/urandom >"$d/file$i"
        i=$((i + 1))
    done
    (cd "$1" && find . -type f -name 'file*' | sort | xargs sha256sum) >"$WORK/sums"
}

# ext4 on block device $1: made, mounted, filled, unmounted, checked by
# e2fsck -fn, mounted again and compared.
ext4_roundtrip() {
    dev=$1 t0=$(date +%s)
    mkdir -p "$WORK/mnt"
    mkfs.ext4 -q -F "$dev" || fail "mkfs.ext4 $dev"
    mount "$dev" "$WORK/mnt" || fail "mount $dev"
    at_exit "umount '$WORK/mnt' 2>/dev/null"
    fill_tree "$WORK/mnt"
    umount "$WORK/mnt" || fail "umount $dev"
    e2fsck -fn "$dev" >"$WORK/fsck" 2>&1 || { cat "$WORK/fsck"; fail "e2fsck -fn $dev"; }
    mount "$dev" "$WORK/mnt" || fail "mount $dev again"
    (cd "$WORK/mnt" && sha256sum -c --quiet "$WORK/sums") || fail "checksums after remount"
    umount "$WORK/mnt" || fail "umount $dev"
    ok "ext4 on $dev: files written, fsck clean, checksums equal after remount ($(( $(date +%s) - t0 )) s)"
}

# fio writes blocks of $2 bytes (default 4k) at random offsets of the
# first $3 (default 16M) of block device $1 with crc32c checksums and
# reads them all back: a short run.
fio_verify() {
    t0=$(date +%s) bs=${2:-4k} size=${3:-16M}
    fio --name=verify --filename="$1" --direct=1 --ioengine=libaio \
        --rw=randwrite --bs="$bs" --iodepth=8 --size="$size" --verify=crc32c \
        --verify_fatal=1 --do_verify=1 --output="$WORK/fio" >/dev/null 2>&1 ||
        { cat "$WORK/fio"; fail "fio verify on $1"; }
    grep -q 'err= 0' "$WORK/fio" || { cat "$WORK/fio"; fail "fio reported errors on $1"; }
    ok "fio: $size of $bs random writes verified with crc32c on $1 ($(( $(date +%s) - t0 )) s)"
}

# Blocks written, discarded and read back as zeros on block device $1
# (the device programs' disks read zeros where unmapped): 1 MiB at 1 MiB.
discard_zeroes() {
    head -c 1048576 /dev/urandom >"$WORK/pattern"
    dd if="$WORK/pattern" of="$1" bs=1M seek=1 count=1 oflag=direct 2>/dev/null ||
        fail "write before discard on $1"
    blkdiscard -o 1048576 -l 1048576 "$1" || fail "blkdiscard $1"
    dd if="$1" bs=1M skip=1 count=1 iflag=direct 2>/dev/null |
        cmp -s -n 1048576 - /dev/zero || fail "discarded blocks of $1 are not zeros"
    ok "blkdiscard of 1 MiB on $1: read back as zeros"
}

NBD_PORT=10809

# Serve a RAM disk over NBD on the guest's loopback: the options are
# spd-ramdisk's (size, block length).
nbd_serve() {
    start_device "$RAMDISK" "$@" --nbd "nbd://127.0.0.1:$NBD_PORT/"
}

# Attach /dev/nbd0 to that export with the kernel's NBD client and the
# given nbd-client options; detached at exit. Prints the block sizes the
# kernel took.
nbd_attach() {
    need nbd-client
    nbd-client 127.0.0.1 "$NBD_PORT" /dev/nbd0 -N '' "$@" ||
        fail "nbd-client $*"
    at_exit "nbd-client -d /dev/nbd0 >/dev/null 2>&1"
    wait_until 30 test "$(cat /sys/block/nbd0/size)" -gt 0 ||
        fail "/dev/nbd0 has no size after nbd-client $*"
    q=/sys/block/nbd0/queue
    echo "nbd0: $(cat /sys/block/nbd0/size) sectors," \
        "logical block $(cat $q/logical_block_size)," \
        "physical block $(cat $q/physical_block_size)"
}

nbd_detach() {
    nbd-client -d /dev/nbd0 || fail "nbd-client -d /dev/nbd0"
    stop_device "$SERVER_PID"
}

ISCSI_PORTAL=127.0.0.1:3260

# Serve spd-rawdisk over iSCSI on the guest's loopback (the options are
# its own: file, size, block length) and log the kernel's initiator in
# with open-iscsi; logged out at exit. Sets ISCSI_IQN and ISCSI_DEV.
iscsi_attach() {
    iscsi_setup
    start_device "$RAWDISK" "$@" --iscsi="$ISCSI_PORTAL"
    iscsi_discover
    iscsi_login || fail "login to $ISCSI_IQN"
    iscsi_wait_disk
}

# open-iscsi's daemon, with its state on tmpfs; stopped at exit.
iscsi_setup() {
    need iscsiadm iscsid
    # open-iscsi writes its state under /etc/iscsi, /var/lib/iscsi and
    # /run, read-only here: tmpfs over them, /etc/iscsi seeded from the
    # host's.
    mkdir -p "$WORK/etc-iscsi"
    cp -a /etc/iscsi/. "$WORK/etc-iscsi/"
    mount -t tmpfs tmpfs /etc/iscsi
    at_exit "umount /etc/iscsi"
    cp -a "$WORK/etc-iscsi/." /etc/iscsi/
    echo "InitiatorName=iqn.2026-11.org.spd:vm-initiator" >/etc/iscsi/initiatorname.iscsi
    mount -t tmpfs tmpfs /var/lib
    at_exit "umount /var/lib"
    mkdir -p /var/lib/iscsi /run/lock/iscsi
    # Its own session: iscsid signals its process group as it stops.
    setsid iscsid -f >"$WORK/iscsid.log" 2>&1 &
    PIDS="$! $PIDS"
}

# SendTargets discovery on the portal, with CHAP when given USER SECRET;
# sets ISCSI_IQN to the first target.
iscsi_discover() {
    if [ $# -eq 2 ]; then
        iscsiadm -m discoverydb -t sendtargets -p "$ISCSI_PORTAL" -o new >/dev/null
        iscsiadm -m discoverydb -t sendtargets -p "$ISCSI_PORTAL" -o update \
            -n discovery.sendtargets.auth.authmethod -v CHAP \
            -n discovery.sendtargets.auth.username -v "$1" \
            -n discovery.sendtargets.auth.password -v "$2" >/dev/null
        set -- -m discoverydb -t sendtargets -p "$ISCSI_PORTAL" --discover
    else
        set -- -m discovery -t sendtargets -p "$ISCSI_PORTAL"
    fi
    wait_until 10 iscsiadm "$@" >"$WORK/targets" ||
        { cat "$WORK/iscsid.log"; fail "discovery on $ISCSI_PORTAL"; }
    ISCSI_IQN=$(awk '{print $2; exit}' "$WORK/targets")
    [ -n "$ISCSI_IQN" ] || fail "no target in the discovery reply"
}

# Log in to ISCSI_IQN, with CHAP when given USER SECRET: the status of
# iscsiadm (a refused login is no failure here); logged out at exit.
iscsi_login() {
    node="-m node -T $ISCSI_IQN -p $ISCSI_PORTAL"
    if [ $# -eq 2 ]; then
        iscsiadm $node -o update -n node.session.auth.authmethod -v CHAP \
            -n node.session.auth.username -v "$1" \
            -n node.session.auth.password -v "$2" >/dev/null || return 1
    fi
    at_exit "iscsiadm $node --logout >/dev/null 2>&1"
    iscsiadm $node --login >"$WORK/login" 2>&1
}

# The kernel's disk of the session; sets ISCSI_DEV.
iscsi_wait_disk() {
    wait_until 30 iscsi_disk >/dev/null || fail "no block device for the iSCSI session"
    ISCSI_DEV=/dev/$(iscsi_disk)
    wait_until 10 test -b "$ISCSI_DEV" || fail "no $ISCSI_DEV"
    ok "logged in to $ISCSI_IQN: $ISCSI_DEV"
}

# The disk of the (only) iSCSI session.
iscsi_disk() {
    ls /sys/class/iscsi_session/session*/device/target*/*:*:*:*/block/ 2>/dev/null |
        head -1 | grep .
}

iscsi_detach() {
    iscsiadm -m node -T "$ISCSI_IQN" -p "$ISCSI_PORTAL" --logout >/dev/null ||
        fail "logout from $ISCSI_IQN"
    stop_device "$SERVER_PID"
    ok "logged out, server stopped cleanly"
}

# The SCSI disk $1 is Spd's 128 MiB disk of 512-byte blocks with unmap
# limits: sg_inq, sg_vpd -p bl, sg_readcap -l (its output left in
# $WORK/cap).
sg_disk_check() {
    dev=$1
    sg_inq "$dev" >"$WORK/inq" || fail "sg_inq $dev"
    grep -q 'Product identification: Spd disk' "$WORK/inq" || { cat "$WORK/inq"; fail "sg_inq: not Spd's disk"; }
    sg_vpd -p bl "$dev" >"$WORK/bl" || fail "sg_vpd -p bl $dev"
    grep -q 'Maximum unmap LBA count' "$WORK/bl" || { cat "$WORK/bl"; fail "sg_vpd -p bl: no unmap limits"; }
    sg_readcap -l "$dev" >"$WORK/cap" || fail "sg_readcap -l $dev"
    grep -q 'Logical block length=512 bytes' "$WORK/cap" || { cat "$WORK/cap"; fail "sg_readcap: block length"; }
    grep -q 'Number of logical blocks=262144' "$WORK/cap" || { cat "$WORK/cap"; fail "sg_readcap: block count"; }
    ok "sg_inq, sg_vpd -p bl, sg_readcap -l on $dev: Spd disk, 262144 blocks of 512 bytes, unmap limits"
}

# COMPARE AND WRITE (sg_compare_and_write) on the SCSI disk $1 of 512-byte
# blocks, at LBA 1000: a compare that matches writes the new block, a
# miscompare ends in MISCOMPARE (exit 14) and changes nothing; each read
# back with dd.
sg_caw_check() {
    dev=$1
    for b in old new other; do head -c 512 /dev/urandom >"$WORK/caw.$b"; done
    dd if="$WORK/caw.old" of="$dev" bs=512 seek=1000 count=1 oflag=direct 2>/dev/null ||
        fail "write before COMPARE AND WRITE on $dev"
    cat "$WORK/caw.old" "$WORK/caw.new" >"$WORK/caw.in"
    sg_compare_and_write --in="$WORK/caw.in" --lba=1000 --num=1 "$dev" ||
        fail "sg_compare_and_write with matching data on $dev"
    dd if="$dev" bs=512 skip=1000 count=1 iflag=direct 2>/dev/null | cmp -s - "$WORK/caw.new" ||
        fail "COMPARE AND WRITE that matched did not write the block"
    cat "$WORK/caw.old" "$WORK/caw.other" >"$WORK/caw.in"
    status=0
    sg_compare_and_write --quiet --in="$WORK/caw.in" --lba=1000 --num=1 "$dev" || status=$?
    expect_eq "$status" 14 "exit status of sg_compare_and_write on a miscompare"
    dd if="$dev" bs=512 skip=1000 count=1 iflag=direct 2>/dev/null | cmp -s - "$WORK/caw.new" ||
        fail "a miscompare changed the block"
    ok "sg_compare_and_write on $dev: a match writes, a miscompare gives MISCOMPARE (14) and changes nothing"
}
