#!/bin/sh
# Build Spd and show it working: a 256 MiB RAM disk becomes a real kernel
# block device (FUSE file + loop), gets an ext4 file system, is mounted,
# written and read back, and is served over NBD at the same time.
set -eu
cd "$(dirname "$0")/.."
scripts/setup-debian.sh
scripts/build.sh

DIR=$(mktemp -d /tmp/spd-demo.XXXXXX)
PORT=${SPD_DEMO_PORT:-10809}
loop="" pid=""
cleanup() {
    set +e
    mountpoint -q "$DIR/mnt" && umount "$DIR/mnt"
    [ -z "$loop" ] || losetup -d "$loop"
    [ -z "$pid" ] || { kill -TERM "$pid"; wait "$pid"; }
    rm -rf "$DIR"
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "Starting spd-ramdisk: 256 MiB in memory, exported as a file and over NBD"
build/devices/spd-ramdisk --size 256M --fuse "$DIR/disk" \
    --nbd "nbd://127.0.0.1:$PORT/" \
    --nbd "nbd+unix:///?socket=$DIR/nbd.sock" \
    --pid-file "$DIR/pid" &
pid=$!
i=0
until [ -s "$DIR/pid" ]; do
    i=$((i + 1))
    [ $i -lt 200 ] && kill -0 "$pid" 2>/dev/null || { echo "spd-ramdisk did not start"; exit 1; }
    sleep 0.05
done
ls -l "$DIR/disk"

step "Turning the file into a kernel block device"
loop=$(losetup -f --show "$DIR/disk")
echo "$loop: $(blockdev --getsize64 "$loop") bytes, $(blockdev --getss "$loop")-byte sectors"

step "Making an ext4 file system and mounting it"
mkfs.ext4 -q -L spd-demo "$loop"
mkdir "$DIR/mnt"
mount "$loop" "$DIR/mnt"
df -h "$DIR/mnt" | sed 1d

step "Writing a 32 MiB file, dropping the caches, reading it back"
head -c 32M /dev/urandom >"$DIR/file"
cp "$DIR/file" "$DIR/mnt/file"
sync
echo 3 >/proc/sys/vm/drop_caches
if cmp -s "$DIR/file" "$DIR/mnt/file"; then
    echo "read back: identical, sha256 $(sha256sum <"$DIR/mnt/file" | cut -c1-16)..."
else
    echo "read back: DIFFERENT"; exit 1
fi

step "The same disk over NBD, while it is mounted"
if command -v nbdinfo >/dev/null; then
    PATH=/usr/bin:$PATH nbdinfo "nbd://127.0.0.1:$PORT/" | sed -n '1,12p'
fi
cat <<EOF2

Reach it from elsewhere on this machine while spd-ramdisk runs:
  qemu-img info nbd://127.0.0.1:$PORT/
  nbdinfo --map nbd://127.0.0.1:$PORT/
  qemu-system-x86_64 -drive file=nbd://127.0.0.1:$PORT/,format=raw ...
  nbd-client 127.0.0.1 $PORT /dev/nbd0 -N ''     (on a kernel with nbd)
EOF2

step "Cleaning up: unmount, detach the loop device, stop spd-ramdisk"
umount "$DIR/mnt"
losetup -d "$loop"
loop=""
kill -TERM "$pid"
wait "$pid"
pid=""
echo "done"
