#!/bin/sh
# run.sh [TEST|GROUP...] - boot a Linux 6.12 guest under qemu (software
# emulation) and run tests/vm/cases/TEST.sh inside it, all of them by
# default, in one boot. The guest sees the host's root read-only over
# virtiofs, so it runs the host's tools and $BUILD's programs; servers and
# clients meet on the guest's loopback. Exit status: 0 all passed (or
# failed as known), 1 a failure, 77 nothing could run (no qemu, no kernel).
# README.md in this folder says more.
set -eu
PATH=/usr/bin:/usr/sbin:/bin:/sbin:$PATH
export PATH
here=$(cd "$(dirname "$0")" && pwd)
. "$here/image.sh"

: "${BUILD:?BUILD must name the meson build directory}"
BUILD=$(cd "$BUILD" && pwd)
LIMIT=${SPD_VM_TEST_TIMEOUT:-300}   # seconds per test
VIRTIOFSD=${VIRTIOFSD:-/usr/lib/qemu/virtiofsd}

skip() { echo "SKIP - $*"; exit 77; }

# Each argument names a test (nbd_512), or a group (nbd: every nbd_*.sh).
# bench_* cases are benchmarks (bench/): run only when named.
[ $# -gt 0 ] || set -- $(cd "$here/cases" && ls *.sh | grep -v '^bench_' | sed 's/\.sh$//')
names=""
for arg in "$@"; do
    found=$arg
    [ -f "$here/cases/$arg.sh" ] ||
        found=$(cd "$here/cases" && ls "${arg}"_*.sh 2>/dev/null | sed 's/\.sh$//')
    [ -n "$found" ] || { echo "run.sh: no test $arg in $here/cases" >&2; exit 1; }
    names="$names $found"
done
set -- $names

for cmd in qemu-system-x86_64 busybox cpio xz gzip dpkg-deb apt-get; do
    command -v "$cmd" >/dev/null 2>&1 || skip "$cmd is not installed"
done
[ -x "$VIRTIOFSD" ] || skip "no virtiofsd at $VIRTIOFSD"
[ "$(id -u)" -eq 0 ] || skip "virtiofsd must run as root to share /"
busybox --help >/dev/null 2>&1 && ! ldd "$(command -v busybox)" >/dev/null 2>&1 ||
    skip "busybox is not static (install busybox-static)"

cache=$(vm_cache_dir)
mkdir -p "$cache" || skip "cannot create the kernel cache $cache"
deb=$(vm_kernel_deb "$cache") || skip "no linux-image-6.12 cloud kernel package from apt"
tree=$(vm_kernel_tree "$cache" "$deb") || skip "cannot unpack $deb"
initrd=$(vm_initramfs "$tree" "$here") || { echo "FAIL - cannot build the initramfs" >&2; exit 1; }
kernel=$(echo "$tree"/boot/vmlinuz-*)
echo "vm: kernel $kernel"

WORK=$(mktemp -d /tmp/spd-vm.XXXXXX)
VFS_PID=""
cleanup() {
    [ -z "$VFS_PID" ] || kill "$VFS_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$VIRTIOFSD" --socket-path="$WORK/vfs.sock" -o source=/ -o cache=always \
    -o sandbox=chroot >"$WORK/virtiofsd.log" 2>&1 &
VFS_PID=$!
i=0
until [ -S "$WORK/vfs.sock" ]; do
    i=$((i + 1))
    [ $i -lt 100 ] || { cat "$WORK/virtiofsd.log"; echo "FAIL - virtiofsd did not start" >&2; exit 1; }
    sleep 0.1
done

tests=$(echo "$@" | tr ' ' ,)
# No ERMS: TCG emulates rep movsb ~7x slower than rep movsq, and the
# kernel would use it for every user copy (README.md says more).
start=$(date +%s)
timeout -k 10 $(( LIMIT * $# + 120 )) qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu "${SPD_VM_CPU:-max,-erms}" -m 2048 -smp 2 \
    -nographic -no-reboot -nic none \
    -object memory-backend-memfd,id=mem,size=2048M,share=on -numa node,memdev=mem \
    -chardev socket,id=vfs,path="$WORK/vfs.sock" \
    -device vhost-user-fs-pci,chardev=vfs,tag=host \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet spdvm_dir=$here spdvm_build=$BUILD spdvm_tests=$tests spdvm_timeout=$LIMIT" \
    </dev/null 2>&1 | tee "$WORK/console"
echo "vm: guest ran $(( $(date +%s) - start )) s"

# One verdict per test from its SPD-VM-RESULT line; a test on the list of
# known failures that fails is reported as such, and one that passes is a
# failure until it comes off the list.
set -f   # kernel log lines in reasons hold [ ]
failed=0 ran=0
if tr -d '\r' <"$WORK/console" | grep '^SPD-VM-ERROR'; then
    failed=1   # the guest could not be set up as the tests expect
fi
for t in "$@"; do
    line=$(tr -d '\r' <"$WORK/console" | grep "^SPD-VM-RESULT $t " | tail -1) || true
    set -- $line
    result=${3:-FAIL} secs=${4:-?}
    reason=$(echo "$line" | cut -d' ' -f5-)
    [ -n "$line" ] || reason="no result (guest crashed or timed out)"
    known=$(sed -n "s/^$t[[:space:]]\{1,\}//p" "$here/known_failures" 2>/dev/null)
    if [ -n "$known" ] && [ "$result" = FAIL ]; then
        result=XFAIL reason="$reason (known: $known)"
    elif [ -n "$known" ] && [ "$result" = PASS ]; then
        result=XPASS-FAIL reason="passes now: remove it from known_failures"
    fi
    echo "vm: $t: $result ${secs}s $reason"
    case $result in
    PASS|XFAIL) ran=$((ran + 1)) ;;
    SKIP) ;;
    *) failed=$((failed + 1)) ;;
    esac
done
[ $failed -eq 0 ] || exit 1
[ $ran -gt 0 ] || exit 77
exit 0
