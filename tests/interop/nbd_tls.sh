#!/bin/sh
# NBD over TLS (STARTTLS) with real clients: nbdinfo, nbdcopy and qemu-img
# with X.509 certificates and pre-shared keys; --tls=require refuses
# plaintext clients and answers TLS_REQD before STARTTLS; --tls=on serves
# both; a wrong CA, a wrong or unknown key, and with --tls-verify-peer a
# missing or foreign client certificate are refused; bad credential files
# stop the program before it serves.
. "$(dirname "$0")/../lib.sh"
need certtool psktool nbdinfo nbdcopy qemu-img python3 sha256sum

# A CA, a server and a client certificate; a second CA with its own client.
pki() {   # DIR CA-NAME
    mkdir -p "$1"
    certtool --generate-privkey --key-type ecdsa --outfile "$1/ca-key.pem" 2>/dev/null
    printf 'cn = %s\nca\ncert_signing_key\nexpiration_days = 2\n' "$2" >"$1/ca.info"
    certtool --generate-self-signed --load-privkey "$1/ca-key.pem" \
        --template "$1/ca.info" --outfile "$1/ca-cert.pem" 2>/dev/null
    for who in server client; do
        certtool --generate-privkey --key-type ecdsa --outfile "$1/$who-key.pem" 2>/dev/null
        {
            echo "organization = Spd tests"
            echo "cn = $who"
            [ "$who" = server ] && printf 'dns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\n'
            [ "$who" = client ] && echo tls_www_client
            printf 'encryption_key\nsigning_key\nexpiration_days = 2\n'
        } >"$1/$who.info"
        certtool --generate-certificate --load-ca-certificate "$1/ca-cert.pem" \
            --load-ca-privkey "$1/ca-key.pem" --load-privkey "$1/$who-key.pem" \
            --template "$1/$who.info" --outfile "$1/$who-cert.pem" 2>/dev/null
    done
}
pki "$WORK/pki" "Spd test CA"
pki "$WORK/other" "Another CA"
# What a client holds: the CA and its own certificate (libnbd's layout).
mkdir "$WORK/client" "$WORK/ca-only" "$WORK/wrong-ca" "$WORK/foreign"
for f in ca-cert.pem client-cert.pem client-key.pem; do
    cp "$WORK/pki/$f" "$WORK/client/"
    cp "$WORK/other/$f" "$WORK/foreign/"
done
cp "$WORK/pki/ca-cert.pem" "$WORK/ca-only/"
cp "$WORK/pki/ca-cert.pem" "$WORK/foreign/"     # trusts the server...
cp "$WORK/other/ca-cert.pem" "$WORK/wrong-ca/"  # ...this one does not
psktool -u alice -p "$WORK/keys.psk" >/dev/null 2>&1
psktool -u alice -p "$WORK/wrong.psk" >/dev/null 2>&1
psktool -u mallory -p "$WORK/unknown.psk" >/dev/null 2>&1
chmod 600 "$WORK"/*.psk
# qemu's tls-creds-psk reads DIR/keys.psk.
mkdir "$WORK/qpsk" && cp "$WORK/keys.psk" "$WORK/qpsk/"

head -c 24M /dev/urandom >"$WORK/image.raw"
SUM=$(sha256sum <"$WORK/image.raw")
sum_of() { head -c 24M "$1" | sha256sum; }

port_of() { p=${1##*:}; echo "${p%%/*}"; }

# A raw client (python3 - PORT CASE):
#   require  options before STARTTLS get TLS_REQD; ABORT is acknowledged
#   stall    STARTTLS, then silence: dropped at the handshake timeout
#   off      STARTTLS is unsupported, and the connection goes on
#   flood    over TLS: 48 reads of 1 MiB sent before any reply is read, so
#            that the server meets a full socket mid-record many times;
#            every reply, in whatever order, must still match IMAGE
raw_client() {   # PORT CASE [IMAGE CA]
    python3 - "$@" <<'PY'
import socket, ssl, struct, sys, time
port, case = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port), timeout=20)
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("connection closed")
        b += c
    return b
assert read(18)[:16] == b"NBDMAGICIHAVEOPT"
s.sendall(struct.pack(">I", 3))             # fixed newstyle, no zeroes
def option(opt, data=b""):
    s.sendall(b"IHAVEOPT" + struct.pack(">II", opt, len(data)) + data)
    magic, o, typ, n = struct.unpack(">QIII", read(20))
    assert o == opt, (o, opt)
    return typ, read(n)
ACK, TLS_REQD, INVALID, UNSUP = 1, 0x80000005, 0x80000003, 0x80000001
name = struct.pack(">I", 4) + b"disk"
if case == "require":
    for opt, data in [(3, b""), (8, b""), (6, name + b"\0\0"),
                      (7, name + b"\0\0"), (9, name + b"\0\0\0\0"),
                      (10, name + b"\0\0\0\0"), (99, b"")]:
        typ, msg = option(opt, data)
        assert typ == TLS_REQD, (opt, hex(typ))
        assert b"STARTTLS" in msg, msg
    typ, msg = option(5, b"x")              # STARTTLS takes no data
    assert typ == INVALID, hex(typ)
    typ, _ = option(2)                      # ABORT
    assert typ == ACK, hex(typ)
elif case == "stall":
    typ, _ = option(5)
    assert typ == ACK, hex(typ)
    start = time.monotonic()
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    took = time.monotonic() - start
    assert 1.5 < took < 10, took
    print("%.1f" % took)
elif case == "flood":
    image, ca = open(sys.argv[3], "rb").read(), sys.argv[4]
    typ, _ = option(5)
    assert typ == ACK, hex(typ)
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(s, server_hostname="localhost")
    typ, _ = option(7, name + b"\0\0")     # GO: simple replies
    while typ != ACK:
        assert typ == 3, hex(typ)            # NBD_REP_INFO
        magic, o, typ, n = struct.unpack(">QIII", read(20))
        read(n)
    mib = 1 << 20
    reqs = [(i, (i * 7) % 24 * mib) for i in range(48)]
    s.sendall(b"".join(struct.pack(">IHHQQI", 0x25609513, 0, 0, h, off, mib)
                       for h, off in reqs))
    time.sleep(1)                            # let the socket fill up
    offsets = dict(reqs)
    for _ in reqs:                           # in any order (NBD's handles)
        magic, err, h = struct.unpack(">IIQ", read(16))
        assert magic == 0x67446698 and err == 0 and h in offsets, (magic, err, h)
        off = offsets.pop(h)
        assert read(mib) == image[off:off + mib], "data of read %d" % h
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 2, 99, 0, 0))   # DISC
elif case == "off":
    typ, msg = option(5)
    assert typ == UNSUP, hex(typ)
    typ, _ = option(8)                      # still negotiating, in the clear
    assert typ == ACK, hex(typ)
PY
}

# ---------------------------------------------------------------- X.509
start_device "$RAMDISK" --size 32M --tls=require --handshake-timeout 3 \
    --tls-certificates "$WORK/pki" --nbd "nbd://127.0.0.1:0/disk" \
    --nbd "nbd+unix:///disk?socket=$WORK/sock"
TCP=$(serving_uri "$WORK/server.log" nbds://)
UNIX=$(serving_uri "$WORK/server.log" nbds+unix://)
expect_eq "$UNIX" "nbds+unix:///disk?socket=$WORK/sock" "the Unix serving line"
PORT=$(port_of "$TCP")
CERTS="tls-certificates=$WORK/client"

nbdinfo "$TCP?$CERTS" >"$WORK/info" || fail "nbdinfo over TLS"
grep -q 'with TLS' "$WORK/info" || fail "nbdinfo: no TLS ($(head -1 "$WORK/info"))"
grep -q 'base:allocation' "$WORK/info" || fail "nbdinfo: no meta context over TLS"
ok "nbdinfo over nbds:// (X.509): TLS, structured replies, base:allocation"
nbdinfo --list "$UNIX&$CERTS" | grep -q 'export="disk"' || fail "nbdinfo --list over TLS"
ok "nbdinfo --list over nbds+unix://"

nbdcopy "$WORK/image.raw" "$TCP?$CERTS" || fail "nbdcopy into the export over TLS"
nbdcopy "$UNIX&$CERTS" "$WORK/back.raw" || fail "nbdcopy out over TLS"
expect_eq "$(sum_of "$WORK/back.raw")" "$SUM" "nbdcopy over TLS: checksum"
ok "nbdcopy in and out over TLS, sha256 equal"

X509="tls-creds-x509,id=tls0,dir=$WORK/client,endpoint=client"
NBD="driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$PORT,export=disk,tls-creds=tls0"
head -c 24M /dev/urandom >"$WORK/image2.raw"
qemu-img convert -n -f raw --object "$X509" --target-image-opts \
    "$WORK/image2.raw" "$NBD" || fail "qemu-img convert over TLS"
qemu-img convert --object "$X509" --image-opts "$NBD" -O raw "$WORK/back2.raw" ||
    fail "qemu-img convert out over TLS"
expect_eq "$(sum_of "$WORK/back2.raw")" "$(sha256sum <"$WORK/image2.raw")" \
    "qemu-img over TLS: checksum"
ok "qemu-img convert in and out with tls-creds-x509, sha256 equal"

if nbdinfo "nbd://127.0.0.1:$PORT/disk" >"$WORK/plain.out" 2>&1; then
    fail "require: a plaintext nbdinfo was served"
fi
grep -qi 'tls\|not supported\|policy' "$WORK/plain.out" ||
    fail "require: no clear error for plaintext ($(cat "$WORK/plain.out"))"
if qemu-img info "nbd://127.0.0.1:$PORT/disk" >"$WORK/plain.out" 2>&1; then
    fail "require: a plaintext qemu-img was served"
fi
grep -qi 'tls' "$WORK/plain.out" || fail "require: qemu-img error ($(cat "$WORK/plain.out"))"
ok "require: plaintext nbdinfo and qemu-img refused ($(head -1 "$WORK/plain.out"))"
raw_client "$PORT" require || fail "require: options before STARTTLS"
ok "require: LIST, STRUCTURED_REPLY, INFO, GO, meta contexts and unknown options get TLS_REQD; ABORT is acknowledged"

raw_client "$PORT" flood "$WORK/image2.raw" "$WORK/pki/ca-cert.pem" ||
    fail "48 MiB of replies to a client that reads late, over TLS"
ok "over TLS, 48 MiB of read replies to a client that reads only later: all intact"
raw_client "$PORT" stall >"$WORK/stall" & STALL=$!
nbdinfo "$TCP?$CERTS" >/dev/null || fail "a client while another stalls in TLS"
wait "$STALL" || fail "a client silent after STARTTLS was not dropped in time"
grep -q 'TLS handshake with .* failed' "$WORK/server.log" ||
    fail "the stalled TLS handshake is not logged"
ok "a client silent after STARTTLS is dropped after the handshake timeout ($(cat "$WORK/stall") s), others served meanwhile"

if nbdinfo "$TCP?tls-certificates=$WORK/wrong-ca" >/dev/null 2>&1; then
    fail "a client trusting another CA connected"
fi
ok "a client that does not trust the server's CA is refused"
# Controls for the verify-peer part: without it, neither is refused.
nbdinfo "$TCP?tls-certificates=$WORK/ca-only" >/dev/null ||
    fail "a client without a certificate, no verification asked"
nbdinfo "$TCP?tls-certificates=$WORK/foreign" >/dev/null ||
    fail "a client with another CA's certificate, no verification asked"
stop_device "$SERVER_PID"

# ---------------------------------------------------------------- on
start_device "$RAMDISK" --size 32M --tls=on --tls-certificates "$WORK/pki" \
    --nbd "nbd://127.0.0.1:0/disk"
PLAIN=$(serving_uri "$WORK/server.log" nbd://)
PORT=$(port_of "$PLAIN")
nbdinfo "$PLAIN" | grep -q 'without TLS' || fail "on: plaintext nbdinfo"
nbdinfo "nbds://127.0.0.1:$PORT/disk?$CERTS" | grep -q 'with TLS' ||
    fail "on: nbdinfo over TLS"
nbdcopy "$WORK/image.raw" "nbds://127.0.0.1:$PORT/disk?$CERTS"
nbdcopy "$PLAIN" "$WORK/back3.raw"
expect_eq "$(sum_of "$WORK/back3.raw")" "$SUM" "on: written over TLS, read in plaintext"
ok "on: plaintext and TLS clients both served, same data"
stop_device "$SERVER_PID"

# ---------------------------------------------------------------- PSK
start_device "$RAMDISK" --size 32M --tls=require --tls-psk "$WORK/keys.psk" \
    --nbd "nbd://127.0.0.1:0/disk"
TCP=$(serving_uri "$WORK/server.log" nbds://)
PORT=$(port_of "$TCP")
PSKURI="nbds://alice@127.0.0.1:$PORT/disk"
nbdinfo "$PSKURI?tls-psk-file=$WORK/keys.psk" | grep -q 'with TLS' ||
    fail "nbdinfo with a pre-shared key"
nbdcopy "$WORK/image.raw" "$PSKURI?tls-psk-file=$WORK/keys.psk"
PSK="tls-creds-psk,id=tls0,dir=$WORK/qpsk,username=alice,endpoint=client"
NBD="driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=$PORT,export=disk,tls-creds=tls0"
qemu-img convert --object "$PSK" --image-opts "$NBD" -O raw "$WORK/back4.raw" ||
    fail "qemu-img with tls-creds-psk"
expect_eq "$(sum_of "$WORK/back4.raw")" "$SUM" "PSK: nbdcopy in, qemu-img out"
ok "PSK: nbdinfo, nbdcopy and qemu-img (tls-creds-psk), sha256 equal"
if nbdinfo "$PSKURI?tls-psk-file=$WORK/wrong.psk" >/dev/null 2>&1; then
    fail "PSK: a wrong key connected"
fi
if nbdinfo "nbds://mallory@127.0.0.1:$PORT/disk?tls-psk-file=$WORK/unknown.psk" \
        >/dev/null 2>&1; then
    fail "PSK: an unknown user connected"
fi
grep -q 'TLS handshake with .* failed' "$WORK/server.log" ||
    fail "PSK: no log line for the refused handshakes"
ok "PSK: a wrong key and an unknown user are refused, and logged"
stop_device "$SERVER_PID"

# ---------------------------------------------------------------- verify peer
start_device "$RAMDISK" --size 32M --tls=require --tls-verify-peer \
    --tls-certificates "$WORK/pki" --nbd "nbd://127.0.0.1:0/disk"
TCP=$(serving_uri "$WORK/server.log" nbds://)
nbdinfo "$TCP?$CERTS" | grep -q 'with TLS' || fail "verify-peer: the CA's client"
if nbdinfo "$TCP?tls-certificates=$WORK/ca-only" >/dev/null 2>&1; then
    fail "verify-peer: a client without a certificate connected"
fi
if nbdinfo "$TCP?tls-certificates=$WORK/foreign" >/dev/null 2>&1; then
    fail "verify-peer: a client certificate from another CA was accepted"
fi
[ "$(grep -c 'TLS handshake with .* failed' "$WORK/server.log")" -ge 2 ] ||
    fail "verify-peer: the refusals are not logged"
ok "verify-peer: the CA's client served; no certificate or another CA's refused"
stop_device "$SERVER_PID"

# ---------------------------------------------------------------- off
start_device "$RAMDISK" --size 1M --nbd "nbd://127.0.0.1:0/disk"
PLAIN=$(serving_uri "$WORK/server.log" nbd://)
raw_client "$(port_of "$PLAIN")" off || fail "off: STARTTLS"
if nbdinfo "nbds://127.0.0.1:$(port_of "$PLAIN")/disk?$CERTS" >/dev/null 2>&1; then
    fail "off: a TLS-only client was served"
fi
ok "off (the default): STARTTLS is unsupported, the client may go on in the clear"
stop_device "$SERVER_PID"

# ---------------------------------------------------------------- bad files
refused() {   # WHAT PATTERN ARGS...: exit 2 and PATTERN on stderr
    what=$1 pattern=$2
    shift 2
    status=0
    "$RAMDISK" --size 1M --nbd "nbd://127.0.0.1:0" "$@" >"$WORK/bad.out" 2>&1 || status=$?
    expect_eq "$status" 2 "$what: exit status ($(cat "$WORK/bad.out"))"
    grep -q -- "$pattern" "$WORK/bad.out" || fail "$what: message ($(cat "$WORK/bad.out"))"
    [ "$(wc -l <"$WORK/bad.out")" -eq 1 ] || fail "$what: not one line ($(cat "$WORK/bad.out"))"
}
cp "$WORK/keys.psk" "$WORK/open.psk" && chmod 644 "$WORK/open.psk"
refused "PSK file readable by others" "readable by others" --tls=on --tls-psk "$WORK/open.psk"
chmod 620 "$WORK/open.psk"
refused "PSK file writable by its group" "writable by its group" --tls=on --tls-psk "$WORK/open.psk"
ln -s "$WORK/keys.psk" "$WORK/link.psk"
refused "PSK file a symlink" "symbolic link" --tls=on --tls-psk "$WORK/link.psk"
refused "PSK file missing" "No such file" --tls=on --tls-psk "$WORK/none.psk"
printf 'alice:12x4\n' >"$WORK/bad.psk" && chmod 600 "$WORK/bad.psk"
refused "PSK file not hex" "not hexadecimal" --tls=on --tls-psk "$WORK/bad.psk"
refused "no certificate directory" "not a directory" --tls=on --tls-certificates "$WORK/none"
mkdir "$WORK/nokey" && cp "$WORK/pki/server-cert.pem" "$WORK/pki/ca-cert.pem" "$WORK/nokey/"
refused "no server key" "server-key.pem" --tls=require --tls-certificates "$WORK/nokey"
mkdir "$WORK/noca" && cp "$WORK/pki/server-cert.pem" "$WORK/pki/server-key.pem" "$WORK/noca/"
refused "verify-peer without a CA" "ca-cert.pem" --tls=on --tls-verify-peer --tls-certificates "$WORK/noca"
refused "--tls=on without credentials" "needs --tls-certificates" --tls=on
refused "credentials with --tls off" "--tls is off" --tls-certificates "$WORK/pki"
refused "--tls=maybe" "not off, on or require" --tls=maybe --tls-certificates "$WORK/pki"
status=0
"$RAMDISK" --size 1M --nbd "nbds://127.0.0.1:0" --tls=on --tls-certificates "$WORK/pki" \
    >"$WORK/bad.out" 2>&1 || status=$?
expect_eq "$status" 2 "nbds:// with --tls=on ($(cat "$WORK/bad.out"))"
ok "bad credential files and options: one line, exit 2, nothing served"
