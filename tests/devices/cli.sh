#!/bin/sh
# The device command line as users of nbdkit and qemu-nbd expect it:
# -r is read-only, options that conflict or would be ignored are refused,
# every value is checked before anything is served, --iscsi takes its
# address after a space, and the "serving" lines are addresses a client
# can use.
. "$(dirname "$0")/../lib.sh"

OUT=$WORK/out

# Must exit 2 with one line on stderr holding the words, and serve nothing.

# --- -r is --read-only; the product revision is long-only -------------
sock=$WORK/ro.sock
start_device "$RAMDISK" --size 1M -r --nbd "nbd+unix:///?socket=$sock"
nbdinfo --json "nbd+unix:///?socket=$sock" >"$OUT" || fail "nbdinfo"
grep -q '"is_read_only": true' "$OUT" || { cat "$OUT" >&2; fail "-r: the export is writable"; }
stop_device "$SERVER_PID"
"$RAMDISK" --size 1M --read-only --check >"$OUT" || fail "--read-only --check"
grep -q 'WP 1 (write protected)' "$OUT" || fail "--read-only: the unit is writable"
expect_refused "$RAMDISK" "unexpected argument '2.5'" -r 2.5 --check
"$RAMDISK" --size 1M --product-revision 2.5 --check >"$OUT" || fail "--product-revision"
grep -q 'revision "2.5"' "$OUT" || fail "--product-revision did not reach INQUIRY"
ok "-r and --read-only serve read-only; --product-revision is long-only"

# --- conflicting or ignored options ------------------------------------
expect_refused "$RAMDISK" "--check" --check --nbd nbd://127.0.0.1:0/
expect_refused "$RAMDISK" "--check" --check --fuse "$WORK/f"
expect_refused "$RAMDISK" "--pid-file" --check --pid-file "$WORK/pid"
expect_refused "$RAMDISK" "--iscsi-target needs an iSCSI export" --nbd nbd://127.0.0.1:0/ \
    --iscsi-target iqn.2026-11.org.example:disk
printf 'alice a-secret-of-sixteen\n' >"$WORK/secrets"
chmod 600 "$WORK/secrets"
expect_refused "$RAMDISK" "--chap-file needs an iSCSI export" --nbd nbd://127.0.0.1:0/ \
    --chap-file "$WORK/secrets"
expect_refused "$RAMDISK" "--fuse $WORK/a given twice" --fuse "$WORK/a" --fuse "$WORK/a"
expect_refused "$RAMDISK" "only one --iscsi" --iscsi 127.0.0.1:0 --iscsi 127.0.0.1:0
expect_refused "$RAWDISK" "only one --file" --file "$WORK/a.img" --file "$WORK/b.img" --check
expect_refused "$RAMDISK" "no export given"
[ ! -e "$WORK/a" ] && [ ! -e "$WORK/a.img" ] || fail "a refused command line created a file"
ok "--check with exports, --iscsi-target/--chap-file without --iscsi, a path given twice, a second --iscsi/--file: exit 2"

# --- --fuse repeats: one disk, two files -------------------------------
if [ -e /dev/fuse ] && [ "$(id -u)" -eq 0 ]; then
    start_device "$RAMDISK" --size 1M --fuse "$WORK/fa" --fuse "$WORK/fb"
    head -c 65536 /dev/urandom >"$WORK/pattern"
    dd if="$WORK/pattern" of="$WORK/fa" bs=64k count=1 conv=notrunc,fsync 2>/dev/null ||
        fail "write through the first --fuse file"
    cmp -n 65536 "$WORK/pattern" "$WORK/fb" || fail "the second --fuse file shows other bytes"
    stop_device "$SERVER_PID"
    [ ! -s "$WORK/fa" ] && [ ! -s "$WORK/fb" ] || fail "--fuse files left mounted"
    ok "--fuse twice: the same disk at both paths, both unmounted at the end"
else
    skip_part "--fuse twice needs /dev/fuse and root"
fi

# --- every value checked before anything is served ---------------------
expect_refused "$RAMDISK" "--iscsi 127.0.0.1:99999" --iscsi 127.0.0.1:99999
expect_refused "$RAMDISK" "--iscsi 127.0.0.1:port" --iscsi=127.0.0.1:port
for iqn in disk iqn.26-11.org.example iqn.2026-13.org.example \
        iqn.2026-11. eui.0123 naa.0123456789abcdef01 'iqn.2026-11.org.ex ample' \
        "iqn.2026-11.org.$(head -c 220 /dev/zero | tr '\0' x)"; do
    expect_refused "$RAMDISK" "--iscsi-target" --iscsi 127.0.0.1:0 --iscsi-target "$iqn"
done
expect_refused "$RAMDISK" "--pid-file $WORK/missing/pid: no such folder" \
    --nbd nbd://127.0.0.1:0/ --pid-file "$WORK/missing/pid"
expect_refused "$RAMDISK" "--nbd" --nbd http://example.com/
expect_refused "$RAMDISK" "--chap-file" --iscsi 127.0.0.1:0 --chap-file "$WORK/absent"
expect_refused "$RAMDISK" "--size 99999999999T: too large" --size 99999999999T --check
expect_refused "$RAMDISK" "--size 99999999999999999999: too large" --size 99999999999999999999 --check
expect_refused "$RAMDISK" "too large" --block-count 18446744073709551615 --check
ok "a bad port, IQN, pid-file folder, URI or size: exit 2, nothing served"

# Good names of each form pass the check.
for iqn in iqn.2026-11.org.example:disk.1 eui.0123456789ABCDEF \
        naa.0123456789abcdef naa.0123456789abcdef0123456789abcdef; do
    "$RAMDISK" --iscsi 127.0.0.1:0 --iscsi-target "$iqn" --help >/dev/null ||
        fail "--iscsi-target $iqn refused"
done
ok "iqn., eui. and naa. names are taken"

# --- never a backing file under /dev -----------------------------------
absent=/dev/spd-test-absent-$$
expect_refused "$RAWDISK" "never created under /dev" --file "$absent" --size 4M --check
[ ! -e "$absent" ] || { rm -f "$absent"; fail "$absent was created"; }
ok "spd-rawdisk --file /dev/... --size 4M refuses to create a file in /dev"

# --- the serving lines: addresses a client can use ---------------------
need iscsi-inq
start_device "$RAMDISK" --size 1M --nbd nbd://127.0.0.1:0/ --iscsi 127.0.0.1:0 \
    --iscsi-target iqn.2026-11.org.Example:Disk
nbd=$(sed -n 's/^spd-ramdisk: serving \(nbd:.*\)/\1/p' "$WORK/server.log")
iscsi=$(sed -n 's/^spd-ramdisk: serving \(iscsi:.*\)/\1/p' "$WORK/server.log")
case $nbd in nbd://127.0.0.1:[1-9]*/) ;; *) fail "NBD serving line: '$nbd'" ;; esac
case $iscsi in iscsi://127.0.0.1:[1-9]*/iqn.2026-11.org.example:disk/0) ;;
    *) fail "iSCSI serving line: '$iscsi'" ;; esac
nbdinfo --size "$nbd" >"$OUT" || fail "nbdinfo $nbd"
expect_eq "$(cat "$OUT")" 1048576 "size over $nbd"
iscsi-inq "$iscsi" | grep -q DIRECT_ACCESS || fail "iscsi-inq $iscsi"
stop_device "$SERVER_PID"
ok "--iscsi ADDR:PORT after a space; the lines name the real ports: $nbd $iscsi"

# A bare --iscsi leaves the next option alone.
expect_refused "$RAMDISK" "--check" --iscsi --check
ok "a bare --iscsi does not take the option after it"

# --- socket activation: --nbd systemd takes the socket systemd passes ---
if command -v systemd-socket-activate >/dev/null 2>&1; then
    port=$(free_port)
    systemd-socket-activate -l "127.0.0.1:$port" \
        "$RAMDISK" --size 1M --nbd systemd >"$WORK/activated.log" 2>&1 &
    activator=$!
    PIDS="$activator $PIDS"
    wait_until 30 nbdinfo "nbd://127.0.0.1:$port/" >"$OUT" ||
        { cat "$WORK/activated.log" >&2; fail "no NBD service on the activated socket"; }
    grep -q "export-size: 1048576" "$OUT" || fail "the activated export is not the disk"
    grep -q "serving nbd://127.0.0.1:$port/" "$WORK/activated.log" ||
        fail "the serving line does not name the activated socket"
    kill -TERM "$activator"
    wait "$activator" || fail "spd-ramdisk under socket activation exited with $?"
    ok "--nbd systemd serves on the socket systemd-socket-activate passed"
else
    skip_part "socket activation needs systemd-socket-activate (Debian: systemd)"
fi

# --- Unix sockets: 0600 whatever the umask, or the --socket-mode asked for ---
for mode in "" 660 604; do
    rm -f "$WORK/mode.sock"
    (umask 000; exec "$RAMDISK" --size 1M ${mode:+--socket-mode "$mode"} \
        --nbd "nbd+unix:///?socket=$WORK/mode.sock" >"$WORK/mode.log" 2>&1) &
    pid=$!
    PIDS="$pid $PIDS"
    wait_until 30 test -S "$WORK/mode.sock" || { cat "$WORK/mode.log" >&2; fail "no socket"; }
    expect_eq "$(stat -c %a "$WORK/mode.sock")" "${mode:-600}" "mode of the socket under umask 000 (--socket-mode '$mode')"
    kill -TERM "$pid"
    wait "$pid" || fail "spd-ramdisk --socket-mode '$mode' exited with $?"
done
for bad in 1000 8 -1 abc ""; do
    status=0
    "$RAMDISK" --size 1M --socket-mode "$bad" --nbd "nbd+unix:///?socket=$WORK/bad.sock" \
        >/dev/null 2>"$WORK/bad.err" || status=$?
    expect_eq "$status" 2 "exit status of --socket-mode '$bad'"
    grep -q -- "--socket-mode" "$WORK/bad.err" || fail "--socket-mode '$bad': no message"
done
ok "Unix sockets are 0600 under umask 000, and --socket-mode sets them; bad modes exit 2"

# --- connection limits for every network export -------------------------
expect_refused "$RAMDISK" "--max-connections 0" --max-connections 0 --nbd nbd://127.0.0.1:0/
expect_refused "$RAMDISK" "--idle-timeout x" --idle-timeout x --nbd nbd://127.0.0.1:0/
expect_refused "$RAMDISK" "--handshake-timeout -1" --handshake-timeout -1 --nbd nbd://127.0.0.1:0/
expect_refused "$RAMDISK" "--max-connections-per-peer 0" --max-connections-per-peer 0 --nbd nbd://127.0.0.1:0/
expect_refused "$RAMDISK" "--max-memory 512K" --max-memory 512K --nbd nbd://127.0.0.1:0/
expect_refused "$RAMDISK" "--max-connection-memory 1X" --max-connection-memory 1X --nbd nbd://127.0.0.1:0/
need python3
start_device "$RAMDISK" --size 1M --max-connections 1 --handshake-timeout 2 \
    --nbd nbd://127.0.0.1:0/
uri=$(serving_uri "$WORK/server.log" nbd://)
hostport=${uri#nbd://}
hostport=${hostport%/}
python3 - "${hostport%:*}" "${hostport##*:}" <<'PY' || fail "connection limits"
import socket, subprocess, sys, time
host, port = sys.argv[1], int(sys.argv[2])
uri = "nbd://%s:%d/" % (host, port)
def nbdinfo_ok():
    return subprocess.run(["nbdinfo", "--size", uri], capture_output=True,
                          timeout=30).returncode == 0
# One client holds the only slot: a second one is turned away.
hold = socket.create_connection((host, port))
assert hold.recv(18)[:8] == b"NBDMAGIC", "greeting"
assert not nbdinfo_ok(), "a client beyond --max-connections 1 was served"
# The holder never finishes its handshake: closed by --handshake-timeout.
hold.settimeout(20)
start = time.time()
assert hold.recv(1) == b"", "the stalled handshake was not closed"
assert time.time() - start < 15, "closed only after %.1f s" % (time.time() - start)
hold.close()
# The slot is free again.
deadline = time.time() + 10
while not nbdinfo_ok():
    assert time.time() < deadline, "the slot did not come back"
    time.sleep(0.1)
PY
grep -q "refused a connection from 127.0.0.1" "$WORK/server.log" ||
    { cat "$WORK/server.log" >&2; fail "the refusal is not logged with the peer's address"; }
stop_device "$SERVER_PID"
ok "--max-connections turns a client away (logged), --handshake-timeout frees the slot"

# --- the physical block length reaches NBD and SCSI initiators ----------
sock=$WORK/pbl.sock
start_device "$RAMDISK" --size 1M --physical-block-length 8192 --iscsi 127.0.0.1:0 \
    --nbd "nbd+unix:///?socket=$sock"
nbdinfo --json "nbd+unix:///?socket=$sock" >"$OUT" || fail "nbdinfo"
grep -q '"block_size_preferred": 8192' "$OUT" || { cat "$OUT" >&2; fail "NBD: the preferred block size is not 8192"; }
"$BUILD/tools/scsitool/spd-scsitool" --json "$(serving_uri "$WORK/server.log" iscsi://)" capacity16 >"$OUT" ||
    fail "READ CAPACITY(16)"
grep -q '"logical_blocks_per_physical_block_exponent": 4' "$OUT" ||
    { cat "$OUT" >&2; fail "READ CAPACITY(16): LBPPBE is not 4 (8192 / 512)"; }
stop_device "$SERVER_PID"
expect_refused "$RAMDISK" "--physical-block-length 1000" --physical-block-length 1000 --check
expect_refused "$RAMDISK" "--physical-block-length 1024 is not the block length 4096" \
    --block-length 4096 --physical-block-length 1024 --check
ok "--physical-block-length: the NBD preferred block size and LBPPBE; bad values exit 2"
