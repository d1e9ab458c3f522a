#!/usr/bin/env python3
"""iscsi_protocol.py - raw iSCSI PDUs against iscsi_serve: login key
negotiation and its failures, malformed PDUs (truncated, oversized, bad
opcode, CmdSN outside the window, bad header and data digests, Data-Out
beyond what was announced), non-existent LUNs, Text with continuation,
NOP, task management and logout. After every abuse a healthy session
opened at the start must still work.

Usage: iscsi_protocol.py PORT TARGET_NAME
Exit 0 when every check passed; prints one line per check.
"""
import hashlib
import socket
import struct
import sys
import time

PORT = int(sys.argv[1])
TARGET = sys.argv[2]
# "chap USER SECRET": the target wants CHAP; only those checks run.
CHAP = sys.argv[4:6] if len(sys.argv) > 5 and sys.argv[3] == "chap" else None
INITIATOR = "iqn.2026-01.org.example:protocol-test"
FAILURES = []


def check(cond, what):
    print(("ok - " if cond else "FAIL - ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


# ---------------------------------------------------------------------
# CRC32C (digests), least significant byte first on the wire

def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def pad4(data):
    return data + b"\0" * (-len(data) % 4)


def kv_encode(pairs):
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)


def kv_decode(data):
    out = {}
    for item in data.split(b"\0"):
        if item:
            k, _, v = item.decode().partition("=")
            out[k] = v
    return out


class Closed(Exception):
    pass


class Conn:
    def __init__(self, source="127.0.0.1"):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=5,
                                          source_address=(source, 0))
        self.hd = self.dd = False
        self.itt = 0x100
        self.cmdsn = 0
        self.statsn = 0
        self.maxcmdsn = 0

    def next_itt(self):
        self.itt += 1
        return self.itt

    def raw(self, data):
        self.s.sendall(data)

    def send(self, bhs, data=b"", bad_hd=False, bad_dd=False, dsl=None):
        bhs = bytearray(bhs)
        n = len(data) if dsl is None else dsl
        bhs[5:8] = n.to_bytes(3, "big")
        out = bytes(bhs)
        if self.hd:
            d = crc32c(out) ^ (1 if bad_hd else 0)
            out += struct.pack("<I", d)
        if data:
            p = pad4(data)
            out += p
            if self.dd:
                out += struct.pack("<I", crc32c(p) ^ (1 if bad_dd else 0))
        self.s.sendall(out)

    def exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise Closed()
            buf += chunk
        return buf

    def recv(self, timeout=5):
        self.s.settimeout(timeout)
        try:
            bhs = self.exact(48)
        except socket.timeout:
            return None
        finally:
            self.s.settimeout(5)
        ahs = self.exact(bhs[4] * 4)
        if self.hd:
            d = struct.unpack("<I", self.exact(4))[0]
            if d != crc32c(bhs + ahs):
                raise AssertionError("bad header digest from the target")
        dsl = int.from_bytes(bhs[5:8], "big")
        data = b""
        if dsl:
            p = self.exact(dsl + (-dsl % 4))
            if self.dd:
                d = struct.unpack("<I", self.exact(4))[0]
                if d != crc32c(p):
                    raise AssertionError("bad data digest from the target")
            data = p[:dsl]
        if bhs[0] & 0x3F not in (0x23,):        # not a Login Response
            sn = struct.unpack(">III", bhs[24:36])
            self.maxcmdsn = sn[2]
            self.statsn = sn[0] + 1
        return bytes(bhs), data

    def closed(self, timeout=3):
        """True when the target closed the connection (after any PDUs)."""
        end = time.time() + timeout
        try:
            while time.time() < end:
                if self.recv(timeout=end - time.time()) is None:
                    return False
        except (Closed, ConnectionError):
            return True
        return False

    def close(self):
        self.s.close()


def login_pdu(conn, pairs, csg=1, nsg=3, transit=True, isid=b"\x80\0\0\0\0\1",
              tsih=0, vmin=0, cont=False):
    bhs = bytearray(48)
    bhs[0] = 0x43
    bhs[1] = (0x80 if transit else 0) | (0x40 if cont else 0) | csg << 2 | \
        (nsg if transit else 0)
    bhs[3] = vmin
    bhs[8:14] = isid
    bhs[14:16] = tsih.to_bytes(2, "big")
    struct.pack_into(">IHHII", bhs, 16, 0x42, 0, 0, conn.cmdsn, 0)
    conn.send(bhs, kv_encode(pairs))
    bhs, data = conn.recv()
    status = bhs[36] << 8 | bhs[37]
    return status, bhs, kv_decode(data)


def base_keys(session="Normal", target=TARGET, digests=False, extra=()):
    keys = [("InitiatorName", INITIATOR), ("SessionType", session)]
    if session == "Normal" and target is not None:
        keys.append(("TargetName", target))
    d = "CRC32C" if digests else "None"
    keys += [("HeaderDigest", d), ("DataDigest", d),
             ("InitialR2T", "Yes"), ("ImmediateData", "No"),
             ("MaxRecvDataSegmentLength", "8192"),
             ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"),
             ("ErrorRecoveryLevel", "0"), ("MaxOutstandingR2T", "1")]
    return keys + list(extra)


def keys_with(changes, **kw):
    """base_keys() with values replaced (None: removed) or added."""
    keys = []
    for k, v in base_keys(**kw):
        if k in changes:
            v = changes[k]
        if v is not None:
            keys.append((k, v))
    have = {k for k, _ in keys}
    return keys + [(k, v) for k, v in changes.items()
                   if k not in have and v is not None]


def login(session="Normal", digests=False, extra=(), isid=b"\x80\0\0\0\0\1",
          changes=None):
    conn = Conn()
    pairs = keys_with(changes) if changes else \
        base_keys(session, digests=digests, extra=extra)
    status, bhs, keys = login_pdu(conn, pairs, isid=isid)
    assert status == 0, f"login failed: {status:04x}"
    assert bhs[1] & 0x80 and bhs[1] & 3 == 3, "no transit to full feature"
    conn.hd = keys.get("HeaderDigest") == "CRC32C"
    conn.dd = keys.get("DataDigest") == "CRC32C"
    conn.statsn = struct.unpack(">I", bhs[24:28])[0] + 1
    conn.maxcmdsn = struct.unpack(">I", bhs[32:36])[0]
    conn.keys = keys
    return conn


def scsi_cmd(conn, cdb, lun=0, edtl=0, read=False, write=False, data=b"",
             final=True, cmdsn=None, itt=None):
    bhs = bytearray(48)
    bhs[0] = 0x01
    bhs[1] = (0x80 if final else 0) | (0x40 if read else 0) | \
        (0x20 if write else 0) | 1
    bhs[9] = lun
    itt = conn.next_itt() if itt is None else itt
    if cmdsn is None:
        cmdsn = conn.cmdsn
        conn.cmdsn += 1
    struct.pack_into(">IIII", bhs, 16, itt, edtl, cmdsn, conn.statsn)
    bhs[32:32 + len(cdb)] = cdb
    conn.send(bhs, data)
    return itt


def response(conn, timeout=5):
    """Collect Data-In until the status: (status, data, sense, bhs)."""
    data = b""
    while True:
        got = conn.recv(timeout)
        if got is None:
            return None
        bhs, seg = got
        op = bhs[0] & 0x3F
        if op == 0x25:
            data += seg
            if bhs[1] & 1:
                return bhs[3], data, b"", bhs
        elif op == 0x21:
            sense = seg[2:2 + int.from_bytes(seg[:2], "big")] if seg else b""
            return bhs[3], data, sense, bhs
        elif op == 0x3F:
            return "reject", seg, bhs[2], bhs
        else:
            return op, seg, b"", bhs


def nop(conn, payload=b"ping"):
    bhs = bytearray(48)
    bhs[0] = 0x40
    bhs[1] = 0x80
    itt = conn.next_itt()
    struct.pack_into(">IIII", bhs, 16, itt, 0xFFFFFFFF, conn.cmdsn, conn.statsn)
    conn.send(bhs, payload)
    got = conn.recv()
    return got is not None and got[0][0] & 0x3F == 0x20 and \
        struct.unpack(">I", got[0][16:20])[0] == itt and got[1] == payload


TUR = bytes(6)
INQUIRY = bytes([0x12, 0, 0, 0, 96, 0])
REPORT_LUNS = bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])


def write10(lba, blocks):
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


def read10(lba, blocks):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


# ---------------------------------------------------------------------
# Login

def test_login():
    c = Conn()
    st, bhs, keys = login_pdu(c, keys_with({
        "MaxOutstandingR2T": "4", "X-com.example.Fancy": "1",
        "IFMarker": "Maybe"}))
    check(st == 0, "login: success with odd keys")
    check(keys.get("X-com.example.Fancy") == "NotUnderstood",
          "login: unknown key answered NotUnderstood")
    check(keys.get("IFMarker") == "Reject", "login: bad boolean answered Reject")
    check(keys.get("TargetPortalGroupTag") == "1", "login: TargetPortalGroupTag")
    check(keys.get("MaxOutstandingR2T") == "4", "login: MaxOutstandingR2T minimum")
    c.close()

    c = Conn()
    st, _, keys = login_pdu(c, keys_with({"MaxBurstLength": "100"}))
    check(st == 0 and keys.get("MaxBurstLength") == "Reject",
          "login: out-of-range number answered Reject")
    c.close()

    cases = [
        ("missing InitiatorName", keys_with({"InitiatorName": None}), {},
         0x0207),
        ("missing TargetName", keys_with({"TargetName": None}), {}, 0x0207),
        ("unknown target",
         keys_with({"TargetName": "iqn.2026-01.org.example:nothing"}), {},
         0x0203),
        ("bad SessionType", keys_with({"SessionType": "Odd"}), {}, 0x0209),
        ("unsupported version", base_keys(), {"vmin": 1}, 0x0205),
        ("bad declarative value",
         keys_with({"MaxRecvDataSegmentLength": "12"}), {}, 0x0200),
        ("key twice", base_keys() + [("MaxBurstLength", "4096")], {}, 0x0200),
        ("CHAP keys without CHAP", keys_with({"CHAP_A": "5"}), {}, 0x0200),
        ("stage 2", base_keys(), {"csg": 2}, 0x0200),
        ("transit backwards", base_keys(), {"csg": 1, "nsg": 0}, 0x0200),
        ("unknown TSIH", base_keys(), {"tsih": 77}, 0x020A),
    ]
    for what, pairs, kw, want in cases:
        c = Conn()
        try:
            st, bhs, _ = login_pdu(c, pairs, **kw)
        except Closed:
            st = None
        check(st == want, f"login: {what} gives {want:04x} (got {st})")
        check(c.closed(), f"login: connection closed after {what}")
        c.close()

    # Login text split over two PDUs with the C bit.
    c = Conn()
    text = kv_encode(base_keys())
    half = len(text) // 2
    bhs = bytearray(48)
    bhs[0] = 0x43
    bhs[1] = 0x40 | 1 << 2 | 3
    bhs[8:14] = b"\x80\0\0\0\0\2"
    struct.pack_into(">I", bhs, 16, 7)
    c.send(bhs, text[:half])
    b1, d1 = c.recv()
    bhs[1] = 0x80 | 1 << 2 | 3
    c.send(bhs, text[half:])
    b2, _ = c.recv()
    check(b1[36:38] == b"\0\0" and not d1 and not b1[1] & 0x80 and
          b2[36:38] == b"\0\0" and b2[1] & 0x83 == 0x83,
          "login: continued text (C bit) accepted")
    c.close()


def test_discovery():
    c = login(session="Discovery")
    bhs = bytearray(48)
    bhs[0] = 0x44
    bhs[1] = 0x80
    struct.pack_into(">IIII", bhs, 16, c.next_itt(), 0xFFFFFFFF, c.cmdsn,
                     c.statsn)
    c.send(bhs, kv_encode([("SendTargets", "All")]))
    rb, data = c.recv()
    text = data.decode()
    check(f"TargetName={TARGET}" in text and f"TargetAddress=127.0.0.1:{PORT},1"
          in text, "discovery: SendTargets=All lists the target and portal")
    check(c.keys.get("MaxBurstLength") == "Irrelevant",
          "discovery: MaxBurstLength is Irrelevant")
    st = scsi_cmd(c, TUR)
    check(c.closed(), "discovery: a SCSI command is rejected, session ends")
    c.close()


# ---------------------------------------------------------------------
# Full feature phase

def tur_until_good(conn, tries=4):
    """TEST UNIT READY until GOOD: the unit attentions pending for the
    session's I_T nexus are reported one per command. The senses seen, or
    None when it never became GOOD."""
    seen = []
    for _ in range(tries):
        scsi_cmd(conn, TUR)
        r = response(conn)
        if r and r[0] == 0:
            return seen
        if not r or r[0] != 2 or len(r[2]) < 14 or r[2][2] & 0x0F != 6:
            return None
        seen.append(bytes(r[2][12:14]))
    return None


def test_scsi_basics(c):
    # A new I_T nexus: POWER ON, RESET (29h/00h) first, once.
    ua = tur_until_good(c)
    check(ua == [b"\x29\x00"],
          "scsi: the first command gets the power-on unit attention, "
          "then TEST UNIT READY is good")
    scsi_cmd(c, INQUIRY, lun=5, edtl=96, read=True)
    r = response(c)
    check(r and r[0] == 0 and r[1][0] == 0x7F,
          "scsi: INQUIRY of a missing LUN has peripheral qualifier 3")
    scsi_cmd(c, TUR, lun=5)
    r = response(c)
    check(r and r[0] == 2 and r[2][2] & 0xF == 5 and r[2][12:14] == b"\x25\0",
          "scsi: other commands to a missing LUN: LOGICAL UNIT NOT SUPPORTED")
    scsi_cmd(c, REPORT_LUNS, edtl=256, read=True)
    r = response(c)
    check(r and r[0] == 0 and r[1][:4] == b"\0\0\0\x08",
          "scsi: REPORT LUNS lists LUN 0")
    # A 32-byte CDB: 16 bytes in the header, 16 in an Extended CDB AHS
    # (VARIABLE LENGTH, which the engine does not implement).
    bhs = bytearray(48 + 20)
    bhs[0] = 0x01
    bhs[1] = 0x81
    bhs[4] = 5                          # TotalAHSLength: 20 bytes
    struct.pack_into(">IIII", bhs, 16, c.next_itt(), 0, c.cmdsn, c.statsn)
    c.cmdsn += 1
    bhs[32] = 0x7F
    bhs[39] = 24                        # additional CDB length
    struct.pack_into(">HBB", bhs, 48, 17, 1, 0)     # AHSLength, type 1
    c.send(bhs)
    r = response(c)
    check(r and r[0] == 2 and r[2][2] & 0xF == 5 and r[2][12] == 0x20,
          "scsi: a 32-byte CDB in an AHS reaches the engine (INVALID "
          "COMMAND OPERATION CODE)")
    # A write through R2T, read back.
    data = bytes(range(256)) * 4
    itt = scsi_cmd(c, write10(8, 2), edtl=1024, write=True)
    rb, _ = c.recv()
    ok = rb[0] & 0x3F == 0x31
    ttt, off, length = struct.unpack(">I", rb[20:24])[0], \
        *struct.unpack(">II", rb[40:48])
    dout = bytearray(48)
    dout[0] = 0x05
    dout[1] = 0x80
    struct.pack_into(">IIIIIII", dout, 16, itt, ttt, 0, c.statsn, 0, 0, 0)
    c.send(dout, data)
    r = response(c)
    check(ok and off == 0 and length == 1024 and r and r[0] == 0,
          "scsi: WRITE(10) through an R2T")
    scsi_cmd(c, read10(8, 2), edtl=1024, read=True)
    r = response(c)
    check(r and r[0] == 0 and r[1] == data, "scsi: READ(10) gives it back")
    # Residuals: read 2 blocks, expect 3.
    scsi_cmd(c, read10(8, 2), edtl=1536, read=True)
    r = response(c)
    check(r and r[0] == 0 and r[3][1] & 0x02 and
          struct.unpack(">I", r[3][44:48])[0] == 512,
          "scsi: underflow residual on a short read")


def test_cmdsn_window(c):
    scsi_cmd(c, TUR, cmdsn=c.maxcmdsn + 1)
    c.cmdsn -= 0
    check(response(c, timeout=1) is None,
          "cmdsn: a command beyond MaxCmdSN is ignored")
    scsi_cmd(c, TUR, cmdsn=c.cmdsn - 5)
    check(response(c, timeout=1) is None,
          "cmdsn: a command below ExpCmdSN is ignored")
    scsi_cmd(c, TUR)
    r = response(c)
    check(r and r[0] == 0, "cmdsn: the next command in the window is served")


def test_cmdsn_gap(c):
    # CmdSN n+1 before n: it waits for n (RFC 7143: commands reach the
    # SCSI layer in CmdSN order), then both run.
    n = c.cmdsn
    c.cmdsn += 2
    later = scsi_cmd(c, read10(3, 1), edtl=512, read=True, cmdsn=n + 1)
    check(response(c, timeout=1) is None,
          "cmdsn gap: a command after the gap waits")
    check(nop_immediate(c), "cmdsn gap: an immediate NOP-Out is answered "
          "meanwhile")
    first = scsi_cmd(c, TUR, cmdsn=n)
    got = {}
    for _ in range(2):
        r = response(c)
        if r and r[0] == 0:
            got[struct.unpack(">I", r[3][16:20])[0]] = r
    check(set(got) == {first, later} and
          struct.unpack(">I", got[later][3][28:32])[0] == n + 2,
          "cmdsn gap: both run once the gap is filled")
    # A gap left open: the held command goes with the connection.
    g = login(isid=b"\x80\0\0\0\0\x31")
    scsi_cmd(g, read10(0, 1), edtl=512, read=True, cmdsn=g.cmdsn + 1)
    check(response(g, timeout=0.5) is None, "cmdsn gap: held until the end")
    g.close()


def request_bhs(c, op, itt, cmdsn, flags=0x80, f20=0xFFFFFFFF):
    bhs = bytearray(48)
    bhs[0] = op
    bhs[1] = flags
    struct.pack_into(">IIII", bhs, 16, itt, f20, cmdsn, c.statsn)
    return bhs


def test_cmdsn_gap_requests():
    # Non-immediate NOP-Out, Text and Task Management requests after a
    # CmdSN gap wait for it as commands do, and run in CmdSN order with
    # the commands around them; immediate ones are answered at once.
    c = login(isid=b"\x80\0\0\0\0\x32")
    n = c.cmdsn
    nop_itt, text_itt, tmf_itt = c.next_itt(), c.next_itt(), c.next_itt()
    c.send(request_bhs(c, 0x00, nop_itt, n + 1), b"later")
    c.send(request_bhs(c, 0x04, text_itt, n + 2), b"SendTargets=\0")
    tmf = request_bhs(c, 0x02, tmf_itt, n + 3, flags=0x80 | 1, f20=0x7777)
    struct.pack_into(">I", tmf, 32, (n - 1) & 0xFFFFFFFF)   # RefCmdSN
    c.send(tmf)
    read_itt = scsi_cmd(c, read10(2, 1), edtl=512, read=True, cmdsn=n + 4)
    check(c.recv(timeout=1) is None,
          "cmdsn gap: NOP-Out, Text and Task Management requests after the "
          "gap wait")
    check(nop_immediate(c), "cmdsn gap: an immediate NOP-Out is answered "
          "at once meanwhile")
    first = scsi_cmd(c, TUR, cmdsn=n)
    order, exp_after = [], []
    for _ in range(5):
        got = c.recv()
        if got is None:
            break
        order.append((got[0][0] & 0x3F, struct.unpack(">I", got[0][16:20])[0]))
        exp_after.append(struct.unpack(">I", got[0][28:32])[0])
        if got[0][0] & 0x3F == 0x25 and not got[0][1] & 1:
            c.recv()                            # the read's status follows
    check(order == [(0x21, first), (0x20, nop_itt), (0x24, text_itt),
                    (0x22, tmf_itt), (0x25, read_itt)] and
          exp_after[-1] == n + 5,
          f"cmdsn gap: all run in CmdSN order once the gap is filled "
          f"(got {order})")
    c.close()
    # A Logout after a gap: answered once the gap is filled, last.
    g = login(isid=b"\x80\0\0\0\0\x33")
    n = g.cmdsn
    g.send(request_bhs(g, 0x06, g.next_itt(), n + 1))
    check(g.recv(timeout=1) is None and nop_immediate(g),
          "cmdsn gap: a Logout after the gap waits, the session goes on")
    first = scsi_cmd(g, TUR, cmdsn=n)
    r1, r2 = g.recv(), g.recv()
    check(r1 and r1[0][0] & 0x3F == 0x21 and r2 and r2[0][0] & 0x3F == 0x26
          and r2[0][2] == 0 and g.closed(),
          "cmdsn gap: the Logout runs after the gap is filled and ends the "
          "session")
    g.close()


def nop_immediate(c):
    bhs = bytearray(48)
    bhs[0] = 0x40 | 0x40
    bhs[1] = 0x80
    itt = c.next_itt()
    struct.pack_into(">IIII", bhs, 16, itt, 0xFFFFFFFF, c.cmdsn, c.statsn)
    c.send(bhs, b"imm")
    got = c.recv()
    return got is not None and got[0][0] & 0x3F == 0x20 and got[1] == b"imm"


def test_r2t_range():
    # Two R2Ts of 512 bytes each outstanding: a Data-Out for the second
    # carrying the first one's range is refused.
    c = login(isid=b"\x80\0\0\0\0\x32",
              changes={"MaxBurstLength": "512", "FirstBurstLength": "512",
                       "MaxOutstandingR2T": "2"})
    itt = scsi_cmd(c, write10(8, 2), edtl=1024, write=True)
    r2ts = [c.recv(), c.recv()]
    ok = all(r and r[0][0] & 0x3F == 0x31 for r in r2ts)
    ranges = [struct.unpack(">II", r[0][40:48]) for r in r2ts] if ok else []
    check(ok and ranges == [(0, 512), (512, 512)],
          "data-out: two R2Ts outstanding")
    ttt2 = struct.unpack(">I", r2ts[1][0][20:24])[0] if ok else 0
    dout = bytearray(48)
    dout[0] = 0x05
    dout[1] = 0x80
    struct.pack_into(">IIIIIII", dout, 16, itt, ttt2, 0, c.statsn, 0, 0, 0)
    c.send(dout, b"\xab" * 512)
    r1 = response(c)
    r2 = response(c)
    check(r1 and r1[0] == "reject" and r2 and r2[0] == 2 and
          r2[2][2] & 0xF == 0xB,
          "data-out: the second R2T's TTT with the first R2T's range is "
          "refused, the command ends with CHECK CONDITION")
    check(nop(c), "data-out: the session goes on")
    c.close()


def test_long_login_answer():
    # 200 keys the target does not know: the answer (about 16 KiB) is
    # longer than a login PDU carries, so it comes in pieces with C.
    unknown = [(f"X-org.example.{i:03d}".ljust(60, "k"), "1")
               for i in range(200)]
    text = kv_encode(base_keys() + unknown)
    c = Conn()
    bhs = bytearray(48)
    bhs[0] = 0x43
    bhs[8:14] = b"\x80\0\0\0\0\x33"
    struct.pack_into(">I", bhs, 16, 9)
    pieces = [text[i:i + 8192] for i in range(0, len(text), 8192)]
    ok = True
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        bhs[1] = (0x80 | 1 << 2 | 3) if last else (0x40 | 1 << 2)
        c.send(bhs, piece)
        if not last:
            rb, d = c.recv()
            ok &= rb[36:38] == b"\0\0" and not d
    answer = b""
    got = 0
    while True:
        rb, d = c.recv()
        got += 1
        answer += d
        if rb[36:38] != b"\0\0" or not rb[1] & 0x40:
            break
        ok &= not rb[1] & 0x80 and len(d) <= 8192
        bhs[1] = 1 << 2                  # empty, no T, no C: the next piece
        c.send(bhs, b"")
    keys = kv_decode(answer)
    check(ok and got >= 2 and rb[36:38] == b"\0\0" and rb[1] & 0x83 == 0x83
          and all(keys.get(k) == "NotUnderstood" for k, _ in unknown),
          f"login: a long answer comes in {got} Login Responses with C")
    c.hd = c.dd = False
    c.statsn = struct.unpack(">I", rb[24:28])[0] + 1
    check(nop(c), "login: and the session works")
    c.close()


def test_empty_login_pdu():
    c = Conn()
    try:
        st, _, _ = login_pdu(c, [])
    except Closed:
        st = None
    check(st == 0x0207, "login: a Login Request without data gets 0207 "
          f"(got {st})")
    c.close()


# ---------------------------------------------------------------------
# CHAP (the target started with secrets)

def chap_login(user, secret, source="127.0.0.1", isid=b"\x80\0\0\0\0\x51"):
    """(status of the CHAP_R answer, seconds it took, conn)."""
    c = Conn(source)
    keys = [("InitiatorName", INITIATOR), ("SessionType", "Normal"),
            ("TargetName", TARGET), ("AuthMethod", "CHAP")]
    st, _, k = login_pdu(c, keys, csg=0, nsg=1, isid=isid)
    assert st == 0 and k.get("AuthMethod") == "CHAP", (st, k)
    st, _, k = login_pdu(c, [("CHAP_A", "5")], csg=0, nsg=1, transit=False,
                         isid=isid)
    ident = int(k["CHAP_I"])
    chal = bytes.fromhex(k["CHAP_C"][2:])
    resp = hashlib.md5(bytes([ident]) + secret.encode() + chal).hexdigest()
    start = time.time()
    st, _, _ = login_pdu(c, [("CHAP_N", user), ("CHAP_R", "0x" + resp)],
                         csg=0, nsg=1, isid=isid)
    took = time.time() - start
    if st == 0:
        st, bhs, _ = login_pdu(c, base_keys()[3:], isid=isid)
        st = st if bhs[1] & 0x83 == 0x83 else -1
    return st, took, c


def test_chap(user, secret):
    st, _, c = chap_login(user, secret)
    check(st == 0, "chap: the right secret logs in")
    c.close()
    st, t1, c = chap_login(user, secret + "x")
    c.close()
    st2, t2, c = chap_login(user, secret + "y")
    c.close()
    check(st == 0x0201 and st2 == 0x0201, "chap: wrong secrets refused")
    # 0.5 s after the first failure, 1 s after the second: only lower
    # bounds, never tight ones.
    check(t1 >= 0.3 and t2 >= 0.8 and t2 > t1,
          f"chap: failures are answered later each time ({t1:.2f} s, "
          f"{t2:.2f} s)")
    st, t3, c = chap_login(user, secret)
    check(st == 0, f"chap: the right secret still logs in ({t3:.2f} s)")
    c.close()


def test_logins_per_peer(user, secret):
    hang = [Conn() for _ in range(8)]
    time.sleep(0.5)
    extra = Conn()
    check(extra.closed(timeout=3),
          "per-peer: a ninth login in progress from one address is refused")
    extra.close()
    st, _, c = chap_login(user, secret, source="127.0.0.2",
                          isid=b"\x80\0\0\0\0\x52")
    check(st == 0, "per-peer: another address logs in meanwhile")
    c.close()
    for h in hang:
        h.close()
    st = None
    for _ in range(50):
        try:
            st, _, c = chap_login(user, secret, isid=b"\x80\0\0\0\0\x53")
            c.close()
            break
        except (Closed, ConnectionError, AssertionError, TypeError):
            time.sleep(0.1)
    check(st == 0, "per-peer: the address logs in again once they went")


def test_bad_opcode(c):
    bhs = bytearray(48)
    bhs[0] = 0x1C
    bhs[1] = 0x80
    c.send(bhs, b"junk")
    rb, data = c.recv()
    check(rb[0] & 0x3F == 0x3F and rb[2] == 0x05 and data[:1] == b"\x1c",
          "reject: an unknown opcode gets Reject (command not supported)")
    check(nop(c), "reject: the connection still answers a NOP-Out")


def test_nop_and_text(c):
    check(nop(c, b"x" * 1000), "nop: ping data comes back")
    # SendTargets in a normal session, the request split with C; each
    # PDU non-immediate, so each takes a CmdSN.
    itt = c.next_itt()
    bhs = bytearray(48)
    bhs[0] = 0x04
    bhs[1] = 0x40
    struct.pack_into(">IIII", bhs, 16, itt, 0xFFFFFFFF, c.cmdsn, c.statsn)
    c.cmdsn += 1
    c.send(bhs, b"SendTar")
    rb, data = c.recv()
    ttt = struct.unpack(">I", rb[20:24])[0]
    ok = rb[0] & 0x3F == 0x24 and not data and ttt != 0xFFFFFFFF
    bhs[1] = 0x80
    struct.pack_into(">II", bhs, 20, ttt, c.cmdsn)
    c.cmdsn += 1
    c.send(bhs, b"gets=\0")
    rb, data = c.recv()
    check(ok and rb[1] & 0x80 and f"TargetName={TARGET}".encode() in data and
          struct.unpack(">I", rb[28:32])[0] == c.cmdsn,
          "text: SendTargets= split with the C bit")
    bhs[0] = 0x44                       # immediate: no CmdSN taken
    struct.pack_into(">III", bhs, 16, c.next_itt(), 0xFFFFFFFF, c.cmdsn)
    c.send(bhs, b"SendTargets=Alle\0")
    rb, data = c.recv()
    check(b"SendTargets=Reject" in data, "text: SendTargets=Alle is rejected")


def test_task_management(c):
    bhs = bytearray(48)
    bhs[0] = 0x42
    bhs[1] = 0x80 | 1          # ABORT TASK
    struct.pack_into(">IIIIII", bhs, 16, c.next_itt(), 0x7777, c.cmdsn,
                     c.statsn, c.cmdsn - 1, 0)
    c.send(bhs)
    rb, _ = c.recv()
    check(rb[0] & 0x3F == 0x22 and rb[2] == 1,
          "tmf: ABORT TASK of an unknown task: task does not exist")
    # A write waiting for its data, then LOGICAL UNIT RESET.
    scsi_cmd(c, write10(0, 8), edtl=4096, write=True)
    r2t, _ = c.recv()
    bhs[1] = 0x80 | 5
    struct.pack_into(">I", bhs, 16, c.next_itt())
    struct.pack_into(">I", bhs, 24, c.cmdsn)
    c.send(bhs)
    rb, _ = c.recv()
    check(r2t[0] & 0x3F == 0x31 and rb[0] & 0x3F == 0x22 and rb[2] == 0,
          "tmf: LOGICAL UNIT RESET aborts a write waiting for data")
    bhs[1] = 0x80 | 5
    bhs[9] = 9
    struct.pack_into(">I", bhs, 16, c.next_itt())
    c.send(bhs)
    rb, _ = c.recv()
    check(rb[2] == 2, "tmf: LOGICAL UNIT RESET of a missing LUN")
    check(nop(c), "tmf: the session goes on")


def test_data_out_errors(c):
    # Data-Out beyond what the R2T asked for (and beyond EDTL).
    itt = scsi_cmd(c, write10(0, 1), edtl=512, write=True)
    rb, _ = c.recv()
    ttt = struct.unpack(">I", rb[20:24])[0]
    dout = bytearray(48)
    dout[0] = 0x05
    dout[1] = 0x80
    struct.pack_into(">IIIIIII", dout, 16, itt, ttt, 0, c.statsn, 0, 0, 0)
    c.send(dout, b"\xee" * 1024)
    r1 = response(c)
    r2 = response(c)
    check(r1 and r1[0] == "reject" and r1[2] == 0x04,
          "data-out: beyond the burst gets Reject (protocol error)")
    check(r2 and r2[0] == 2 and r2[2][2] & 0xF == 0xB,
          "data-out: and the command ends with ABORTED COMMAND")
    # Wrong DataSN.
    itt = scsi_cmd(c, write10(0, 1), edtl=512, write=True)
    rb, _ = c.recv()
    ttt = struct.unpack(">I", rb[20:24])[0]
    struct.pack_into(">IIIIIII", dout, 16, itt, ttt, 0, c.statsn, 0, 5, 0)
    c.send(dout, b"\xee" * 512)
    r1 = response(c)
    r2 = response(c)
    check(r1 and r1[0] == "reject" and r2 and r2[0] == 2,
          "data-out: a wrong DataSN is rejected, the command fails")
    # Data-Out for nobody: dropped quietly.
    struct.pack_into(">II", dout, 16, 0x5555, 0x5555)
    c.send(dout, b"\xee" * 512)
    check(nop(c), "data-out: for an unknown task it is dropped quietly")
    # Immediate data though ImmediateData=No: Reject and the end.


def test_session_killers():
    c = login()
    scsi_cmd(c, write10(0, 1), edtl=512, write=True, data=b"\x11" * 512)
    r = response(c)
    check(r and r[0] == "reject", "immediate data against ImmediateData=No "
          "gets Reject")
    check(c.closed(), "... and the connection ends")
    c.close()

    c = login()
    bhs = bytearray(48)
    bhs[0] = 0x40
    bhs[1] = 0x80
    struct.pack_into(">II", bhs, 16, c.next_itt(), 0xFFFFFFFF)
    c.send(bhs, b"", dsl=0xFFFFFF)
    r = response(c)
    check(r and r[0] == "reject" and r[2] == 0x04,
          "oversized data segment gets Reject")
    check(c.closed(), "... and the connection ends")
    c.close()

    c = login(digests=True)
    check(c.hd and c.dd, "digests: CRC32C negotiated")
    check(nop(c, b"digest"), "digests: NOP with digests both ways")
    bhs = bytearray(48)
    bhs[0] = 0x40
    bhs[1] = 0x80
    struct.pack_into(">II", bhs, 16, c.next_itt(), 0xFFFFFFFF)
    c.send(bhs, b"data", bad_dd=True)
    r = response(c)
    check(r and r[0] == "reject" and r[2] == 0x02,
          "digests: a bad data digest gets Reject (data digest error)")
    check(nop(c), "digests: the connection goes on")
    c.send(bhs, b"", bad_hd=True)
    check(c.closed(), "digests: a bad header digest ends the connection")
    c.close()

    c = Conn()
    c.raw(b"\x43\x87" + b"\0" * 18)
    c.close()
    c = login()
    c.raw(bytes([0x01, 0x80]) + b"\0" * 10)
    c.close()
    check(True, "truncated headers: sent and dropped")

    c = login()
    bhs = bytearray(48)
    bhs[0] = 0x46
    bhs[1] = 0x80
    struct.pack_into(">IHHII", bhs, 16, c.next_itt(), 0, 0, c.cmdsn, c.statsn)
    c.send(bhs)
    rb, _ = c.recv()
    check(rb[0] & 0x3F == 0x26 and rb[2] == 0, "logout: response 0")
    check(c.closed(), "logout: the connection closes")
    c.close()


def test_reinstatement():
    a = login(isid=b"\x80\0\0\0\0\x09")
    b = login(isid=b"\x80\0\0\0\0\x09")
    check(a.closed(), "reinstatement: a new login of the same ISID ends the "
          "old session")
    check(nop(b), "reinstatement: the new session works")
    a.close()
    b.close()


def main():
    if CHAP:
        test_chap(*CHAP)
        test_logins_per_peer(*CHAP)
        finish()
        return
    healthy = login(isid=b"\x80\0\0\0\0\x42")
    test_login()
    test_discovery()
    c = login()
    test_scsi_basics(c)
    test_cmdsn_window(c)
    test_cmdsn_gap(c)
    test_cmdsn_gap_requests()
    test_bad_opcode(c)
    test_nop_and_text(c)
    test_task_management(c)
    test_data_out_errors(c)
    c.close()
    test_r2t_range()
    test_long_login_answer()
    test_empty_login_pdu()
    test_session_killers()
    test_reinstatement()
    check(nop(healthy), "a session opened first still works after all that")
    # (after the power-on and reset unit attentions meant for it)
    check(tur_until_good(healthy) is not None, "... and still runs commands")
    healthy.close()
    finish()


def finish():
    if FAILURES:
        print(f"{len(FAILURES)} checks failed", file=sys.stderr)
        sys.exit(1)


main()
