#!/usr/bin/python3
"""NBD protocol edge cases against a running Spd NBD export.

Usage: nbd_protocol.py SOCKET [readonly]

Drives the server with libnbd (with its client-side checks switched off so
bad requests reach the wire) and with raw sockets for malformed traffic.
Every check asserts a precise outcome: bytes read back, an errno, or the
connection being closed while the server keeps serving others.
"""
import errno
import os
import socket
import struct
import sys

try:
    import nbd
except ImportError:
    print("SKIP - python3-libnbd is not installed")
    sys.exit(77)

SOCK = sys.argv[1]
READONLY = len(sys.argv) > 2 and sys.argv[2] == "readonly"
URI = "nbd+unix:///?socket=" + SOCK
failures = 0


def check(cond, what):
    global failures
    if cond:
        print("ok - " + what)
    else:
        print("FAIL - " + what)
        failures += 1


def connect(structured=True, strict=True):
    h = nbd.NBD()
    h.set_request_structured_replies(structured)
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    if not strict:
        h.set_strict_mode(0)
    h.connect_uri(URI)
    return h


def nbd_errno(fn):
    """Run fn; return the errno of the NBD error it raised, or 0."""
    try:
        fn()
    except nbd.Error as e:
        # libnbd gives the errno's number or, in some versions, its name.
        return getattr(errno, e.errno) if isinstance(e.errno, str) else e.errno
    return 0


# ---------------------------------------------------------------- raw wire

OPTS_MAGIC = 0x49484156454F5054
REP_MAGIC = 0x0003E889045565A9


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def raw_greeting():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(SOCK)
    hello = recv_exact(s, 18)
    assert hello[:8] == b"NBDMAGIC" and hello[8:16] == b"IHAVEOPT"
    s.sendall(struct.pack(">I", 3))      # fixed newstyle, no zeroes
    return s


def raw_option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", OPTS_MAGIC, opt, len(data)) + data)


def raw_reply(s):
    magic, opt, rtype, length = struct.unpack(">QIII", recv_exact(s, 20))
    assert magic == REP_MAGIC
    return opt, rtype, recv_exact(s, length)


def raw_go(s):
    raw_option(s, 7, struct.pack(">IH", 0, 0))
    while True:
        _, rtype, data = raw_reply(s)
        if rtype == 1:
            return
        if rtype & 0x80000000:
            raise RuntimeError("GO failed")


def raw_request(s, cmd, offset, length, cookie=1, flags=0, payload=b""):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, cmd, cookie, offset,
                          length) + payload)


def raw_simple_reply(s):
    magic, error, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
    assert magic == 0x67446698
    return error, cookie


def closed_by_server(s):
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, socket.timeout):
        return False


# ---------------------------------------------------------------- tests

def test_export_info():
    h = connect()
    size = h.get_size()
    check(size > 0 and size % 512 == 0, "export size %d" % size)
    check(h.get_block_size(nbd.SIZE_MINIMUM) == 512, "minimum block size")
    check(h.get_block_size(nbd.SIZE_PREFERRED) == 4096, "preferred block size")
    check(h.get_block_size(nbd.SIZE_MAXIMUM) == 1024 * 1024,
          "maximum block size = max transfer length")
    check(h.can_flush() and h.can_fua() and h.can_df()
          and h.can_multi_conn(), "flush, fua, df, multi-conn advertised")
    check(not h.is_rotational(), "not rotational")
    check(h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION),
          "base:allocation negotiated")
    check(h.get_structured_replies_negotiated(), "structured replies")
    if READONLY:
        check(h.is_read_only() and not h.can_trim() and not h.can_zero(),
              "read-only export: no write, trim or zero")
    else:
        check(not h.is_read_only() and h.can_trim() and h.can_zero()
              and h.can_fast_zero(), "trim, zero, fast zero advertised")
    h.shutdown()


def test_roundtrip(structured):
    h = connect(structured=structured)
    data = os.urandom(64 * 1024)
    h.pwrite(data, 1024 * 1024, nbd.CMD_FLAG_FUA)
    check(h.pread(len(data), 1024 * 1024) == data,
          "write FUA then read back (%s replies)"
          % ("structured" if structured else "simple"))
    h.flush()
    h.shutdown()


def test_many_in_flight():
    h = connect()
    blocks = [os.urandom(4096) for _ in range(128)]
    cookies = [h.aio_pwrite(b, 8 * 1024 * 1024 + i * 4096)
               for i, b in enumerate(blocks)]
    while h.aio_in_flight() > 0:
        h.poll(-1)
    check(all(h.aio_command_completed(c) for c in cookies),
          "128 writes in flight all completed")
    bufs = [nbd.Buffer(4096) for _ in blocks]
    cookies = [h.aio_pread(buf, 8 * 1024 * 1024 + i * 4096)
               for i, buf in enumerate(bufs)]
    while h.aio_in_flight() > 0:
        h.poll(-1)
    for c in cookies:
        h.aio_command_completed(c)
    check(all(buf.to_bytearray() == b for buf, b in zip(bufs, blocks)),
          "128 reads in flight returned the right blocks")
    h.shutdown()


def test_bad_requests():
    h = connect(strict=False)
    size = h.get_size()
    check(nbd_errno(lambda: h.pread(512, 1)) == errno.EINVAL,
          "misaligned read offset: EINVAL")
    check(nbd_errno(lambda: h.pread(100, 0)) == errno.EINVAL,
          "misaligned read length: EINVAL")
    check(nbd_errno(lambda: h.pread(0, 0)) == errno.EINVAL,
          "zero-length read: EINVAL")
    check(nbd_errno(lambda: h.pread(4096, size)) == errno.EINVAL,
          "read one block past the end: EINVAL")
    check(nbd_errno(lambda: h.pread(8192, size - 4096)) == errno.EINVAL,
          "read straddling the end: EINVAL")
    check(nbd_errno(lambda: h.pread(512, 2**63)) == errno.EINVAL,
          "read at 2^63: EINVAL")
    check(nbd_errno(lambda: h.pread(64 * 1024 * 1024, 0)) == errno.EINVAL,
          "64 MiB read: EINVAL")
    check(nbd_errno(lambda: h.pread(512, 0, nbd.CMD_FLAG_FUA))
          == errno.EINVAL, "read with the FUA flag: EINVAL")
    want = errno.EPERM if READONLY else errno.ENOSPC
    check(nbd_errno(lambda: h.pwrite(b"x" * 4096, size)) == want,
          "write past the end: %s" % errno.errorcode[want])
    check(nbd_errno(lambda: h.pread(512, size - 512)) == 0,
          "the last block still reads")
    h.shutdown()


def test_zero_trim_and_block_status():
    if READONLY:
        return
    h = connect()
    base = 16 * 1024 * 1024
    h.pwrite(b"\xaa" * (1024 * 1024), base)
    extents = []

    def collect(metacontext, offset, entries, err):
        extents.extend(entries)

    h.block_status(1024 * 1024, base, collect)
    check(extents[:2] == [1024 * 1024, 0], "written range is data")

    h.trim(512 * 1024, base)
    check(h.pread(512 * 1024, base) == bytes(512 * 1024),
          "trimmed range reads zeros")
    extents.clear()
    h.block_status(1024 * 1024, base, collect)
    check(extents[:4] == [512 * 1024, 3, 512 * 1024, 0],
          "block status: hole+zero, then data (%r)" % extents[:4])

    h.zero(4096, base + 768 * 1024, nbd.CMD_FLAG_NO_HOLE)
    check(h.pread(4096, base + 768 * 1024) == bytes(4096),
          "write zeroes (no hole) reads zeros")
    check(h.pread(4096, base + 772 * 1024) == b"\xaa" * 4096,
          "write zeroes stays in its range")
    check(nbd_errno(lambda: h.zero(4096, base, nbd.CMD_FLAG_NO_HOLE
                                   | nbd.CMD_FLAG_FAST_ZERO))
          == errno.ENOTSUP, "fast zero that would write: ENOTSUP")
    h.zero(4096, base + 900 * 1024, nbd.CMD_FLAG_FAST_ZERO)
    check(h.pread(4096, base + 900 * 1024) == bytes(4096),
          "fast zero by unmapping reads zeros")
    extents.clear()
    h.block_status(1024 * 1024, base, collect,
                   nbd.CMD_FLAG_REQ_ONE)
    check(len(extents) == 2, "REQ_ONE gives one extent")
    h.shutdown()


def test_unknown_option_then_go():
    s = raw_greeting()
    raw_option(s, 999, b"abc")
    _, rtype, _ = raw_reply(s)
    check(rtype == 0x80000001, "unknown option: NBD_REP_ERR_UNSUP")
    raw_option(s, 8, b"x")               # STRUCTURED_REPLY with data
    _, rtype, _ = raw_reply(s)
    check(rtype == 0x80000003, "option with bad data: NBD_REP_ERR_INVALID")
    raw_option(s, 7, struct.pack(">I", 4) + b"nope" + struct.pack(">H", 0))
    _, rtype, _ = raw_reply(s)
    check(rtype == 0x80000006, "GO to an unknown export: NBD_REP_ERR_UNKNOWN")
    raw_option(s, 7, struct.pack(">I", 100) + b"ab")
    _, rtype, _ = raw_reply(s)
    check(rtype == 0x80000003, "GO with a lying name length: ERR_INVALID")
    raw_go(s)
    raw_request(s, 0, 0, 512, cookie=7)
    error, cookie = raw_simple_reply(s)
    recv_exact(s, 512)
    check(error == 0 and cookie == 7, "GO after bad options: read works")
    raw_request(s, 77, 0, 512, cookie=8)
    error, cookie = raw_simple_reply(s)
    check(error == errno.EINVAL and cookie == 8, "unknown command: EINVAL")
    raw_request(s, 2, 0, 0)              # DISC
    check(closed_by_server(s), "DISC closes the connection")
    s.close()


def test_info_amplification():
    # NBD_OPT_INFO asking for the name and description 32,765 times: each
    # is answered once, so the answer stays small whatever the request.
    s = raw_greeting()
    requests = struct.pack(">H", 1) + struct.pack(">H", 2)
    count = 32765
    data = struct.pack(">I", 0) + struct.pack(">H", count) + \
        (requests * (count // 2 + 1))[:2 * count]
    raw_option(s, 6, data)                 # INFO
    answered, infos = 0, {}
    while True:
        _, rtype, reply = raw_reply(s)
        answered += 20 + len(reply)
        if rtype != 3:                     # NBD_REP_INFO
            break
        (itype,) = struct.unpack(">H", reply[:2])
        infos[itype] = infos.get(itype, 0) + 1
    check(rtype == 1, "INFO ends with ACK")
    check(all(n == 1 for n in infos.values()),
          "each information type answered once (%r)" % infos)
    check(answered < len(data), "the answer (%d bytes) is smaller than the "
          "request (%d bytes)" % (answered, len(data)))
    raw_go(s)
    s.close()


def test_malformed_streams():
    # Greeting and then nothing: the server must not hang for others.
    s = raw_greeting()
    s.close()
    s = socket.socket(socket.AF_UNIX)
    s.connect(SOCK)
    recv_exact(s, 18)
    s.sendall(struct.pack(">I", 0x80))   # a client flag nobody defined
    check(closed_by_server(s), "unknown client flag: closed")
    s.close()

    s = raw_greeting()
    s.sendall(struct.pack(">QII", 0x1234, 7, 0))
    check(closed_by_server(s), "bad option magic: closed")
    s.close()

    s = raw_greeting()
    s.sendall(struct.pack(">QII", OPTS_MAGIC, 7, 0xFFFFFFFF))
    opt, rtype, _ = raw_reply(s)
    check(rtype == 0x80000009 and closed_by_server(s),
          "4 GiB option: ERR_TOO_BIG and closed")
    s.close()

    s = raw_greeting()
    raw_go(s)
    s.sendall(b"\x00" * 28)
    check(closed_by_server(s), "bad request magic: closed")
    s.close()

    if not READONLY:
        marker = b"\x5a" * 4096
        h = connect()
        h.pwrite(marker, 0)
        s = raw_greeting()
        raw_go(s)
        raw_request(s, 1, 0, 0xFFFFFFFF, payload=b"\x11" * 4096)
        check(closed_by_server(s), "4 GiB write: closed")
        s.close()
        s = raw_greeting()
        raw_go(s)
        raw_request(s, 1, 0, 1024 * 1024, payload=b"\x22" * 5000)
        s.close()                        # vanished mid-write
        check(h.pread(4096, 0) == marker,
              "nothing written by a 4 GiB or an unfinished write")
        h.shutdown()

    h = connect()
    check(len(h.pread(512, 0)) == 512, "server still serves after all that")
    h.shutdown()


def test_list():
    s = raw_greeting()
    raw_option(s, 3)
    names = []
    while True:
        _, rtype, data = raw_reply(s)
        if rtype == 1:
            break
        (nlen,) = struct.unpack(">I", data[:4])
        names.append(data[4:4 + nlen].decode())
    check(names == [""], "LIST shows the default export (%r)" % names)
    raw_option(s, 2)                     # ABORT
    _, rtype, _ = raw_reply(s)
    check(rtype == 1, "ABORT acknowledged")
    s.close()


test_export_info()
if not READONLY:
    test_roundtrip(True)
    test_roundtrip(False)
    test_many_in_flight()
test_bad_requests()
test_zero_trim_and_block_status()
test_unknown_option_then_go()
test_info_amplification()
test_malformed_streams()
test_list()
sys.exit(1 if failures else 0)
