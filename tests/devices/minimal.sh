#!/bin/sh
# examples/minimal.c as a device author builds it: out of the tree, against
# the library installed by `meson install --destdir`, with nothing but
# `cc minimal.c $(pkg-config --cflags --libs spd)`; then served over NBD and
# FUSE with spd-ramdisk's options, and the bytes written read back.
. "$(dirname "$0")/../lib.sh"
need cc pkg-config meson nbdcopy
SRC=$(cd "$(dirname "$0")/../.." && pwd)

# Install into a folder of its own, then point pkg-config and the loader
# there; the source tree and the build tree are never on the paths.
DEST=$WORK/dest
meson install -C "$BUILD" --destdir "$DEST" --no-rebuild --quiet >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log" >&2; fail "meson install --destdir"; }
pc=$(find "$DEST" -name spd.pc | head -1)
[ -n "$pc" ] || fail "no spd.pc installed"
lib=$(dirname "$(find "$DEST" -name 'libspd.so' | head -1)")
find "$DEST" -path '*/include/spd/cli.h' | grep -q . || fail "spd/cli.h is not installed"

# A library built with ASan and UBSan (SPD_SANITIZE=1) needs its users
# built the same way: the sanitizer runtime must come first.
sanitize=
ldd "$lib/libspd.so" | grep -q libasan && sanitize=-fsanitize=address,undefined

mkdir "$WORK/author"
cp "$SRC/examples/minimal.c" "$WORK/author/"
lines=$(wc -l <"$WORK/author/minimal.c")
[ "$lines" -le 20 ] || fail "examples/minimal.c has $lines lines, more than 20"
(
    cd "$WORK/author"
    export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$DEST"
    cc -Wall -Werror $sanitize -o minimal minimal.c $(pkg-config --cflags --libs spd) 2>cc.log ||
        { cat cc.log >&2; exit 1; }
) || fail "cc minimal.c \$(pkg-config --cflags --libs spd)"
MINIMAL=$WORK/author/minimal
export LD_LIBRARY_PATH="$lib"
ldd "$MINIMAL" | grep -q "$lib/libspd.so" || fail "minimal does not use the installed libspd.so"
ok "minimal.c ($lines lines) builds out of the tree against the installed library"

"$MINIMAL" --version >"$WORK/version" || fail "minimal --version"
want=$("$RAMDISK" --version | sed -n 's/^spd-ramdisk //p')
grep -qx "libspd $want" "$WORK/version" || fail "minimal --version does not name the library's version $want"
"$MINIMAL" --size 4M --check >"$WORK/check" || { cat "$WORK/check" >&2; fail "minimal --check"; }
grep -q '0 failed' "$WORK/check" || fail "minimal --check: a step failed"
ok "minimal --version and --check"

# NBD on a port the system picks, and the FUSE file, at once.
head -c 4M /dev/urandom >"$WORK/data"
"$MINIMAL" --size 4M --nbd nbd://127.0.0.1:0/ --fuse "$WORK/disk" \
    --pid-file "$WORK/pid" >"$WORK/log" 2>&1 &
pid=$!
PIDS="$pid $PIDS"
wait_until 30 test -s "$WORK/pid" || { cat "$WORK/log" >&2; fail "minimal did not start"; }
uri=$(sed -n 's/^minimal: serving \(nbd:.*\)/\1/p' "$WORK/log")
case $uri in nbd://127.0.0.1:[1-9]*/) ;; *) cat "$WORK/log" >&2; fail "no real NBD address: '$uri'" ;; esac
nbdcopy "$WORK/data" "$uri" || fail "nbdcopy to $uri"
cmp "$WORK/data" "$WORK/disk" || fail "the FUSE file holds what NBD wrote"
head -c 1M /dev/urandom >"$WORK/more"
dd if="$WORK/more" of="$WORK/disk" bs=64k seek=16 conv=notrunc,fsync status=none ||
    fail "dd to the FUSE file"
nbdcopy "$uri" "$WORK/back" || fail "nbdcopy from $uri"
cmp -n 1048576 "$WORK/back" "$WORK/data" || fail "the first MiB read back over NBD"
cmp -i 1048576:0 -n 1048576 "$WORK/back" "$WORK/more" || fail "what dd wrote through FUSE, read back over NBD"
kill -INT "$pid"
status=0
wait "$pid" || status=$?
PIDS=$(echo "$PIDS" | sed "s/\b$pid\b//")
expect_eq "$status" 0 "exit status after SIGINT"
[ ! -e "$WORK/pid" ] || fail "the pid file is left behind"
grep -q "$WORK/disk" /proc/mounts && fail "the FUSE file is still mounted"
ok "minimal serves NBD ($uri) and FUSE; bytes written one way read back the other"
