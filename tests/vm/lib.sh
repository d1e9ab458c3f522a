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

# fio writes 4 KiB blocks at random offsets of block device $1 with
# crc32c checksums and reads them all back: a short run.
fio_verify() {
    t0=$(date +%s)
    fio --name=verify --filename="$1" --direct=1 --ioengine=libaio \
        --rw=randwrite --bs=4k --iodepth=8 --size=16M --verify=crc32c \
        --verify_fatal=1 --do_verify=1 --output="$WORK/fio" >/dev/null 2>&1 ||
        { cat "$WORK/fio"; fail "fio verify on $1"; }
    grep -q 'err= 0' "$WORK/fio" || { cat "$WORK/fio"; fail "fio reported errors on $1"; }
    ok "fio: 16 MiB of 4 KiB random writes verified with crc32c on $1 ($(( $(date +%s) - t0 )) s)"
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

    start_device "$RAWDISK" "$@" --iscsi="$ISCSI_PORTAL"
    wait_until 10 iscsiadm -m discovery -t sendtargets -p "$ISCSI_PORTAL" >"$WORK/targets" ||
        { cat "$WORK/iscsid.log"; fail "discovery on $ISCSI_PORTAL"; }
    ISCSI_IQN=$(awk '{print $2; exit}' "$WORK/targets")
    [ -n "$ISCSI_IQN" ] || fail "no target in the discovery reply"
    iscsiadm -m node -T "$ISCSI_IQN" -p "$ISCSI_PORTAL" --login >/dev/null ||
        fail "login to $ISCSI_IQN"
    at_exit "iscsiadm -m node -T '$ISCSI_IQN' -p '$ISCSI_PORTAL' --logout >/dev/null 2>&1"
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
