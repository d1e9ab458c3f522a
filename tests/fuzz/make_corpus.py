#!/usr/bin/env python3
"""make_corpus.py - write the seed corpora of the fuzz targets.

    python3 tests/fuzz/make_corpus.py [OUTDIR]    (default: tests/fuzz/corpus)

Writes corpus/TARGET/seed-* for scsi, nbd, iscsi, iscsi_keys and
iscsi_chap: valid inputs for each command, option, request, PDU and key,
in the input formats the fuzz_TARGET.c files describe. Regressions (inputs that once failed) live beside
them as regress-* and are kept by hand, never written here.
"""
import os
import struct
import sys

# --------------------------------------------------------------------------
# SCSI: config byte, then per command: cdb_len, cdb, 3 bytes (bit 23: data
# follows; bits 22-0: data_len), data.
# --------------------------------------------------------------------------

GEOM_512, GEOM_4096, GEOM_64K, GEOM_HUGE = 0, 1, 2, 3
WP, UNMAP, LBPRZ, CACHE, SMALL, FAULT = 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
THIN = UNMAP | LBPRZ | CACHE


def cmd(cdb, data_len=0, data=None):
    """A command; data (bytes, up to data_len) makes it carry data-out."""
    cdb = bytes(cdb)
    field = data_len | (0x800000 if data is not None else 0)
    return bytes([len(cdb)]) + cdb + struct.pack(">I", field)[1:] + \
        (data or b"")


def cdb6(op, b1=0, b2=0, b3=0, b4=0):
    return [op, b1, b2, b3, b4, 0]


def cdb10(op, b1=0, lba=0, count=0):
    return [op, b1] + list(struct.pack(">I", lba)) + [0] + \
        list(struct.pack(">H", count)) + [0]


def cdb12(op, b1=0, lba=0, count=0):
    return [op, b1] + list(struct.pack(">II", lba, count)) + [0, 0]


def cdb16(op, b1=0, lba=0, count=0, b14=0):
    return [op, b1] + list(struct.pack(">QI", lba, count)) + [b14, 0]


def pattern(n, seed=1):
    return bytes((i * 13 + seed) & 0xff for i in range(n))


# Control mode page with D_SENSE set; caching page as reported.
CONTROL_DSENSE = bytes([0x0a, 0x0a, 0x04, 0x10] + [0] * 8)
CACHING = bytes([0x08, 0x12, 0x04] + [0] * 17)


def unmap_list(descs):
    body = b"".join(struct.pack(">QI4x", lba, n) for lba, n in descs)
    return struct.pack(">HH4x", 6 + len(body), len(body)) + body


def scsi_seeds():
    s = {}
    c = bytes([THIN])
    s["tur"] = c + cmd(cdb6(0x00))
    s["request_sense"] = c + cmd(cdb6(0x03, 0, 0, 0, 252), 252)
    s["request_sense_desc"] = c + cmd(cdb6(0x03, 1, 0, 0, 252), 252)
    s["read6"] = c + cmd(cdb6(0x08, 0, 0, 1, 2), 1024)
    s["read6_256"] = bytes([GEOM_HUGE]) + cmd(cdb6(0x08, 0, 0, 0, 0), 131072)
    s["write6"] = c + cmd(cdb6(0x0a, 0, 0, 2, 1), 512, pattern(512))
    s["inquiry"] = c + cmd(cdb6(0x12, 0, 0, 0, 96), 96)
    for page in (0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2):
        s["inquiry_vpd_%02x" % page] = c + cmd(cdb6(0x12, 1, page, 0, 255), 255)
    s["mode_select6_dsense"] = c + \
        cmd(cdb6(0x15, 0x10, 0, 0, 16), 16, bytes(4) + CONTROL_DSENSE) + \
        cmd(cdb10(0x28, 0, 5000, 1), 512)
    s["mode_select6_bd"] = c + cmd(
        cdb6(0x15, 0x10, 0, 0, 32), 32,
        bytes([0, 0, 0, 8]) + struct.pack(">I", 128) + bytes([0, 0, 2, 0]) +
        CACHING)
    s["mode_sense6"] = c + cmd(cdb6(0x1a, 0, 0x3f, 0xff, 255), 255)
    s["mode_sense6_changeable"] = c + cmd(cdb6(0x1a, 0x08, 0x4a, 0, 255), 255)
    s["start_stop"] = c + cmd(cdb6(0x1b, 0, 0, 0, 1))
    s["prevent_allow"] = c + cmd(cdb6(0x1e, 0, 0, 0, 1))
    s["read_capacity10"] = c + cmd([0x25] + [0] * 9, 8)
    s["read10"] = c + cmd(cdb10(0x28, 0, 10, 4), 2048)
    s["read10_bounce"] = c + cmd(cdb10(0x28, 0x08, 3, 8), 1000)
    s["write10_fua"] = c + cmd(cdb10(0x2a, 0x08, 20, 2), 1024, pattern(1024))
    s["write10_read10"] = c + \
        cmd(cdb10(0x2a, 0, 60, 3), 1536, pattern(1536, 7)) + \
        cmd(cdb10(0x28, 0, 60, 3), 1536)
    s["verify10"] = c + cmd(cdb10(0x2f, 0, 0, 8))
    s["sync_cache10"] = c + cmd(cdb10(0x35, 0x02, 0, 0))
    s["write_same10"] = c + cmd(cdb10(0x41, 0, 30, 5), 512, pattern(512))
    s["write_same10_unmap"] = c + cmd(cdb10(0x41, 0x08, 30, 5), 512, bytes(512))
    lst = unmap_list([(40, 8), (100, 2)])
    s["unmap"] = c + cmd(cdb10(0x42, 0, 0, len(lst)), len(lst), lst)
    s["mode_select10"] = c + cmd(cdb10(0x55, 0x10, 0, 20), 20,
                                 bytes(8) + CONTROL_DSENSE)
    s["mode_sense10_llbaa"] = c + cmd(cdb10(0x5a, 0x10, 0x3f000000, 256), 256)
    s["read16"] = c + cmd(cdb16(0x88, 0, 100, 4), 2048)
    s["write16"] = c + cmd(cdb16(0x8a, 0x08, 120, 2), 1024, pattern(1024, 3))
    s["verify16"] = c + cmd(cdb16(0x8f, 0, 0, 128))
    s["sync_cache16"] = c + cmd(cdb16(0x91, 0, 8, 8))
    s["write_same16"] = c + cmd(cdb16(0x93, 0, 64, 16), 512, pattern(512, 9))
    s["write_same16_ndob"] = c + cmd(cdb16(0x93, 0x09, 64, 16))
    s["read_capacity16"] = c + cmd(cdb16(0x9e, 0x10, 0, 32), 32)
    s["report_luns"] = c + cmd([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], 64)
    s["rsoc_all"] = c + cmd([0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 4, 0, 0, 0], 1024)
    s["rsoc_one"] = c + cmd([0xa3, 0x0c, 0x01, 0x28, 0, 0, 0, 0, 0, 64, 0, 0],
                            64)
    s["rsoc_one_sa"] = c + cmd([0xa3, 0x0c, 0x82, 0x9e, 0, 0x10, 0, 0, 0, 64,
                                0, 0], 64)
    s["read12"] = c + cmd(cdb12(0xa8, 0, 7, 3), 1536)
    s["write12"] = c + cmd(cdb12(0xaa, 0, 9, 1), 512, pattern(512, 5))
    # Other units.
    s["wp_write10"] = bytes([WP]) + cmd(cdb10(0x2a, 0, 0, 1), 512, pattern(512))
    s["g4096_read10"] = bytes([GEOM_4096 | THIN]) + \
        cmd(cdb10(0x28, 0, 30, 2), 8192)
    s["g64k_write16"] = bytes([GEOM_64K]) + \
        cmd(cdb16(0x88, 0, 0, 4), 16) + \
        cmd(cdb16(0x8a, 0, 1, 1), 65536, pattern(64))  # the rest zeros
    s["huge_capacity"] = bytes([GEOM_HUGE | THIN]) + \
        cmd([0x25] + [0] * 9, 8) + cmd(cdb16(0x9e, 0x10, 0, 32), 32) + \
        cmd(cdb16(0x88, 0, (1 << 32) + 60, 4), 2048) + \
        cmd(cdb6(0x1a, 0, 0x3f, 0, 255), 255)
    s["small_transfer_read"] = bytes([SMALL | THIN]) + \
        cmd(cdb10(0x28, 0, 0, 9), 4608)
    s["fault_read"] = bytes([FAULT | THIN]) + \
        cmd(cdb10(0x28, 0, 4, 2), 1024) + \
        cmd(cdb10(0x2a, 0, 5, 1), 512, pattern(512))
    s["dsense_fault_write"] = bytes([FAULT | THIN]) + \
        cmd(cdb6(0x15, 0x10, 0, 0, 16), 16, bytes(4) + CONTROL_DSENSE) + \
        cmd(cdb10(0x2a, 0, 4, 2), 1024, pattern(1024))
    lst = unmap_list([(0, 0xffffffff), (0xffffffff, 65)])
    s["huge_unmap_too_many"] = bytes([GEOM_HUGE | UNMAP]) + \
        cmd(cdb10(0x42, 0, 0, len(lst)), len(lst), lst)
    s["prevent_obsolete"] = c + cmd(cdb6(0x1e, 0, 0, 0, 2))
    s["verify10_bytchk"] = c + \
        cmd(cdb10(0x2a, 0, 70, 2), 1024, pattern(1024, 4)) + \
        cmd(cdb10(0x2f, 0x02, 70, 2), 1024, pattern(1024, 4)) + \
        cmd(cdb10(0x2f, 0x02, 70, 2), 1024, pattern(1024, 5))
    s["verify16_bytchk"] = c + cmd(cdb16(0x8f, 0x02, 0, 1), 512, bytes(512))
    s["get_lba_status"] = c + \
        cmd(cdb10(0x2a, 0, 0, 32), 16384, pattern(16384)) + \
        cmd(cdb10(0x42, 0, 0, 24), 24, unmap_list([(16, 8)])) + \
        cmd(cdb16(0x9e, 0x12, 0, 1024), 1024)
    return s


# --------------------------------------------------------------------------
# NBD: mode byte, then the bytes a client sends.
# --------------------------------------------------------------------------

OPTS_MAGIC = 0x49484156454F5054
REQ_MAGIC = 0x25609513
HANDSHAKE, STRUCTURED, NO_ZEROES = 0x01, 0x08, 0x10
PLAIN, HANG_UP, TRICKLE = 0x20, 0x40, 0x80
EXPORT_RO, EXPORT_NZ, EXPORT_MISSING = 0x02, 0x04, 0x06


def option(opt, data=b""):
    return struct.pack(">QII", OPTS_MAGIC, opt, len(data)) + data


def name_data(name, infos=()):
    n = name.encode()
    return struct.pack(">I", len(n)) + n + struct.pack(">H", len(infos)) + \
        b"".join(struct.pack(">H", i) for i in infos)


def meta_data(name, queries):
    n = name.encode()
    out = struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries))
    for q in queries:
        out += struct.pack(">I", len(q)) + q.encode()
    return out


def request(cmd_type, offset=0, length=0, flags=0, cookie=1, data=b""):
    return struct.pack(">IHHQQI", REQ_MAGIC, flags, cmd_type, cookie, offset,
                       length) + data


READ, WRITE, DISC, FLUSH, TRIM, CACHE_CMD, WZ, BS = range(8)
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16


def transmission(structured=False):
    t = request(WRITE, 0, 1024, FUA, 1, pattern(1024, 11))
    t += request(READ, 0, 1024, DF if structured else 0, 2)
    t += request(FLUSH, cookie=3)
    t += request(TRIM, 8192, 4096, FUA, 4)
    t += request(WZ, 16384, 2048, 0, 5)
    t += request(WZ, 20480, 1024, NO_HOLE, 6)
    if structured:
        t += request(BS, 0, 131072, 0, 7)
        t += request(BS, 8192, 8192, REQ_ONE, 8)
    t += request(DISC, cookie=9)
    return t


def nbd_seeds():
    s = {}
    flags = struct.pack(">I", 3)
    s["full_session"] = bytes([0]) + flags + option(3) + \
        option(6, name_data("", (0, 1, 2, 3))) + \
        option(9, meta_data("", ["base:"])) + option(8) + \
        option(10, meta_data("", ["base:allocation"])) + \
        option(7, name_data("")) + transmission(True)
    s["go_transmission"] = bytes([HANDSHAKE]) + transmission(False)
    s["go_structured"] = bytes([HANDSHAKE | STRUCTURED]) + transmission(True)
    s["go_ro"] = bytes([HANDSHAKE | EXPORT_RO]) + \
        request(WRITE, 0, 4096, 0, 1, pattern(4096)) + \
        request(READ, 4096, 8192, 0, 2) + request(TRIM, 0, 4096, 0, 3)
    s["go_nz"] = bytes([HANDSHAKE | EXPORT_NZ | STRUCTURED | NO_ZEROES]) + \
        request(WZ, 0, 4096, FUA, 1) + request(WZ, 0, 512, FAST_ZERO, 2) + \
        request(READ, 2048, 1024, 0, 3) + request(TRIM, 4096, 1024, 0, 4) + \
        request(BS, 0, 32768, 0, 5) + request(BS, 2560, 4096, 0, 6)
    s["go_missing_then_export_name"] = bytes([HANDSHAKE | EXPORT_MISSING]) + \
        option(1, b"") + request(READ, 0, 512, 0, 1)
    s["export_name"] = bytes([NO_ZEROES]) + struct.pack(">I", 1) + \
        option(1, b"ro") + request(READ, 0, 4096, 0, 1)
    s["options_misc"] = bytes([0]) + flags + option(5) + option(99, b"xyz") + \
        option(8, b"x") + option(3, b"x") + \
        option(6, name_data("nz", (1, 2))) + option(6, name_data("none")) + \
        option(9, meta_data("ro", [])) + option(2)
    s["go_plain_dispatcher"] = bytes([HANDSHAKE | PLAIN | STRUCTURED]) + \
        transmission(True)
    s["hang_up_transmission"] = bytes([HANDSHAKE | HANG_UP]) + \
        b"".join(request(READ, 0, 65536, 0, i) for i in range(64))
    s["hang_up_options"] = bytes([HANG_UP]) + flags + option(3) * 64
    # One READ and 15 FLUSHes per trickled chunk of 16 requests.
    s["trickle_big_reads"] = bytes([HANDSHAKE | TRICKLE]) + b"".join(
        request(READ, 0, 65536 << (i % 2), 0, i) +
        request(FLUSH, cookie=100 + i) * 15 for i in range(8))
    s["errors"] = bytes([HANDSHAKE]) + request(READ, 1, 512, 0, 1) + \
        request(READ, 0, 0, 0, 2) + request(READ, 1 << 40, 512, 0, 3) + \
        request(WRITE, 131072, 512, 0, 4, bytes(512)) + \
        request(READ, 0, 512, 0x80, 5) + request(CACHE_CMD, 0, 512, 0, 6) + \
        request(BS, 0, 512, 0, 7) + request(FLUSH, 0, 512, 0, 8) + \
        request(READ, 0, 64 << 20, DF, 9)
    return s


# --------------------------------------------------------------------------
# iSCSI: mode byte, then PDUs (fuzz_iscsi.c). With LOGIN the PDUs are full
# feature ones; digests are room (zeros) that FIX_DIGESTS fills in.
# --------------------------------------------------------------------------

LOGIN, HDIG, DDIG, FIXDIG, DISCOVERY = 0x01, 0x02, 0x04, 0x08, 0x10
I_HANG_UP, I_TRICKLE, NUMBER = 0x20, 0x40, 0x80
NOP_OUT, SCSI_CMD, TMF, LOGIN_REQ, TEXT, DATA_OUT, LOGOUT, SNACK = \
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x10
IMM = 0x40


def pdu(mode, op, flags=0x80, itt=0, f20=0, cmdsn=0, f28=0, f32=b"",
        lun=0, data=b"", ahs=b""):
    """One PDU as an initiator sends it; f32 is bytes 32-47 (a CDB)."""
    hdr = bytes([op, flags, 0, 0, len(ahs) // 4]) + \
        struct.pack(">I", len(data))[1:] + struct.pack(">Q", lun) + \
        struct.pack(">IIII", itt, f20, cmdsn, f28) + \
        (bytes(f32) + bytes(16))[:16]
    out = hdr + ahs
    if mode & HDIG:
        out += bytes(4)
    if data:
        out += data + bytes((4 - len(data) % 4) % 4)
        if mode & DDIG:
            out += bytes(4)
    return out


def text(pairs):
    return b"".join(b"%s=%s\0" % (k.encode(), v.encode()) for k, v in pairs)


def scsi(mode, itt, cmdsn, cdb, edtl, read=False, write=False, data=b"",
         final=True, lun=0, ahs=b""):
    flags = (0x80 if final else 0) | (0x40 if read else 0) | \
        (0x20 if write else 0) | 1
    return pdu(mode, SCSI_CMD, flags, itt, edtl, cmdsn, 0, cdb,
               lun << 48, data, ahs)


def data_out(mode, itt, ttt, offset, data, final=True, datasn=0):
    return pdu(mode, DATA_OUT, 0x80 if final else 0, itt, ttt, 0, 0,
               bytes(4) + struct.pack(">II", datasn, offset), 0, data)


def iscsi_session(mode):
    """Commands of every kind, numbered from CmdSN 0."""
    t = pdu(mode, NOP_OUT | IMM, itt=1, f20=0xffffffff, data=b"ping")
    t += scsi(mode, 2, 0, cdb6(0x00), 0)                         # TUR
    t += scsi(mode, 3, 1, cdb6(0x12, 0, 0, 0, 96), 96, read=True)
    t += scsi(mode, 4, 2, cdb10(0x2a, 0, 8, 2), 1024, write=True,
              data=pattern(512), final=False)                   # R2T
    t += data_out(mode, 4, 0xffffffff, 512, pattern(512))
    t += scsi(mode, 5, 3, cdb10(0x28, 0, 8, 2), 1024, read=True)
    t += scsi(mode, 6, 4, cdb10(0x2a, 0, 0, 1), 512, write=True,
              data=pattern(512))                                # immediate
    t += scsi(mode, 7, 5, cdb10(0x25), 8, read=True, lun=1)
    t += pdu(mode, TMF, 0x80 | 1, 8, 0, 6, 0, struct.pack(">I", 2))
    t += pdu(mode, TEXT, 0x80, 9, 0xffffffff, 7,
             data=text([("SendTargets", "All"),
                        ("MaxRecvDataSegmentLength", "8192")]))
    t += pdu(mode, NOP_OUT, itt=10, f20=0xffffffff, cmdsn=8)
    t += pdu(mode, LOGOUT, 0x80, 11, 0, 9)
    return t


def login_pdu(pairs, flags=0x87, itt=0, isid=b"\x80\x00\x00\x5f\x00\x02"):
    data = text(pairs)
    hdr = bytes([LOGIN_REQ | IMM, flags, 0, 0, 0]) + \
        struct.pack(">I", len(data))[1:] + isid + bytes(2) + \
        struct.pack(">IIII", itt, 0, 0, 0) + bytes(16)
    return hdr + data + bytes((4 - len(data) % 4) % 4)


def iscsi_seeds():
    s = {}
    s["session"] = bytes([LOGIN]) + iscsi_session(LOGIN)
    m = LOGIN | HDIG | DDIG | FIXDIG | NUMBER
    s["session_digests"] = bytes([m]) + iscsi_session(m)
    m = LOGIN | HDIG | FIXDIG | I_TRICKLE
    s["session_header_digest_trickle"] = bytes([m]) + iscsi_session(m)
    s["discovery"] = bytes([LOGIN | DISCOVERY]) + \
        pdu(0, TEXT, 0x80, 1, 0xffffffff, 0,
            data=text([("SendTargets", "All")])) + \
        scsi(0, 2, 1, cdb6(0x00), 0) + pdu(0, LOGOUT, 0x80, 3, 0, 1)
    s["hang_up_reads"] = bytes([LOGIN | I_HANG_UP]) + b"".join(
        scsi(0, i, i, cdb10(0x28, 0, 0, 32), 16384, read=True)
        for i in range(64))
    s["cmdsn_gap"] = bytes([LOGIN]) + \
        scsi(0, 1, 2, cdb10(0x28, 0, 0, 1), 512, read=True) + \
        pdu(0, NOP_OUT, itt=2, f20=0xffffffff, cmdsn=1) + \
        pdu(0, TEXT, 0x80, 3, 0xffffffff, 3, data=text([("X", "y")])) + \
        scsi(0, 4, 0, cdb6(0x00), 0)
    s["bad_pdus"] = bytes([LOGIN]) + \
        pdu(0, SNACK, itt=1) + pdu(0, 0x1f, itt=2) + \
        pdu(0, LOGIN_REQ, itt=3) + \
        data_out(0, 99, 5, 0, pattern(512)) + \
        scsi(0, 4, 0, [0xa0] + [0] * 15, 0,
             ahs=struct.pack(">HB", 17, 1) + bytes(17) + bytes(3)) + \
        pdu(0, TEXT, 0xc0, 5, 0xffffffff, 1, data=b"A=b")
    # The target's Target Transfer Tags count from 1 on each connection,
    # so a seed can answer its R2Ts and Text continuations.
    m = LOGIN | NUMBER
    s["r2t_solicited"] = bytes([m]) + \
        scsi(m, 1, 0, cdb10(0x2a, 0, 0, 8), 4096, write=True) + \
        data_out(m, 1, 1, 0, pattern(4096, 3)) + \
        scsi(m, 2, 0, cdb10(0x2a, 0, 16, 16), 8192, write=True,
             data=pattern(512)) + \
        data_out(m, 2, 2, 512, pattern(7680, 5)) + \
        scsi(m, 3, 0, cdb10(0x28, 0, 0, 32), 16384, read=True)
    s["tmf_abort_waiting"] = bytes([m]) + \
        scsi(m, 1, 0, cdb10(0x2a, 0, 0, 8), 4096, write=True) + \
        pdu(m, TMF, 0x80 | 1, 2, 1, 0, 0, struct.pack(">I", 0)) + \
        scsi(m, 3, 0, cdb10(0x2a, 0, 8, 8), 4096, write=True) + \
        b"".join(pdu(m, TMF, 0x80 | f, 4 + f, 0xffffffff, 0)
                 for f in (2, 4, 5, 3, 8, 99, 6)) + \
        scsi(m, 20, 0, cdb10(0x2a, 0, 8, 8), 4096, write=True) + \
        pdu(m, TMF, 0x80 | 7, 21, 0xffffffff, 0)
    s["text_continue"] = bytes([m]) + \
        pdu(m, TEXT, 0x40, 1, 0xffffffff, 0, data=b"SendTarg") + \
        pdu(m, TEXT, 0x80, 1, 1, 0, data=b"ets=All\0") + \
        pdu(m, TEXT, 0x80, 2, 0xffffffff, 0,
            data=text([("SendTargets", "All")] * 40 +
                      [("MaxRecvDataSegmentLength", "512")])) + \
        pdu(m, TEXT, 0x80, 2, 3, 0) + pdu(m, TEXT, 0x80, 2, 4, 0)
    s["login_stages"] = bytes([0]) + login_pdu(
        [("InitiatorName", "iqn.2026-01.org.spd:i"),
         ("TargetName", "iqn.2026-01.org.spd:fuzz"),
         ("SessionType", "Normal")], flags=0x81) + login_pdu(
        [("HeaderDigest", "None"), ("MaxBurstLength", "512"),
         ("X-unknown", "1")], flags=0x87, itt=1) + \
        pdu(0, SCSI_CMD, 0x81, 2, 0, 0, 0, cdb6(0x00))
    s["login_continue"] = bytes([0]) + login_pdu(
        [("InitiatorName", "iqn.2026-01.org.spd:i"),
         ("SessionType", "Discovery")], flags=0x44) + login_pdu(
        [("MaxRecvDataSegmentLength", "512")], flags=0x87)
    return s


# --------------------------------------------------------------------------
# iSCSI login keys: mode byte (bit 0 discovery, bit 1 twice), then the text.
# --------------------------------------------------------------------------

def iscsi_keys_seeds():
    every = [("HeaderDigest", "CRC32C,None"), ("DataDigest", "None"),
             ("MaxRecvDataSegmentLength", "0x2000"), ("MaxConnections", "4"),
             ("InitialR2T", "No"), ("ImmediateData", "Yes"),
             ("MaxBurstLength", "1048576"), ("FirstBurstLength", "2097152"),
             ("DefaultTime2Wait", "0"), ("DefaultTime2Retain", "3600"),
             ("MaxOutstandingR2T", "65535"), ("DataPDUInOrder", "No"),
             ("DataSequenceInOrder", "Yes"), ("ErrorRecoveryLevel", "2"),
             ("IFMarker", "No"), ("OFMarker", "Yes"),
             ("iSCSIProtocolLevel", "31")]
    return {
        "every_key": bytes([0]) + text(every),
        "every_key_discovery": bytes([1]) + text(every),
        "every_key_twice": bytes([2]) + text(every),
        "bad_values": bytes([0]) + text(
            [("HeaderDigest", "MD5"), ("InitialR2T", "Maybe"),
             ("MaxBurstLength", "0x"), ("FirstBurstLength", "99999999999"),
             ("MaxOutstandingR2T", "0"), ("DataDigest", "Reject"),
             ("ImmediateData", "NotUnderstood"), ("Unknown", "x")]),
        "declare_bad": bytes([0]) + text([("MaxRecvDataSegmentLength", "1")]),
        "twice": bytes([0]) + text([("MaxBurstLength", "512")] * 2),
        "names": bytes([0]) + text(
            [("InitiatorName", "iqn.2026-01.org.spd:x"),
             ("TargetName", "eui.0123456789abcdef"),
             ("TargetAlias", "naa.0123456789abcdef0123456789abcdef")]),
        "padding": bytes([0]) + b"\0\0" + text([("OFMarker", "No")]) +
        b"\0\0\0",
        "malformed": bytes([0]) + b"=x\0noequals\0" + b"k" * 70 + b"=v",
    }


# --------------------------------------------------------------------------
# iSCSI CHAP: mode byte (bit 0 right answer, bit 1 in base64, bit 2
# reflected challenge), then the security stage's CHAP keys.
# --------------------------------------------------------------------------

def iscsi_chap_seeds():
    wrong = "0x" + "00" * 16
    return {
        "right_answer": bytes([1]) + text(
            [("CHAP_A", "5"), ("CHAP_N", "alice"), ("CHAP_R", wrong)]),
        "right_answer_base64": bytes([3]) + text(
            [("CHAP_A", "7,5"), ("CHAP_N", "bob"), ("CHAP_R", wrong)]),
        "mutual": bytes([1]) + text(
            [("CHAP_N", "alice"), ("CHAP_R", wrong), ("CHAP_I", "77"),
             ("CHAP_C", "0x0123456789abcdef0123456789abcdef")]),
        "mutual_base64": bytes([1]) + text(
            [("CHAP_N", "bob"), ("CHAP_R", wrong), ("CHAP_I", "0x10"),
             ("CHAP_C", "0bAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")]),
        "reflected": bytes([5]) + text(
            [("CHAP_N", "alice"), ("CHAP_R", wrong), ("CHAP_I", "1")]),
        "wrong_answers": bytes([0]) + text(
            [("CHAP_A", "5"), ("CHAP_N", "nobody"), ("CHAP_R", "0xabc")]),
        "no_md5": bytes([0]) + text([("CHAP_A", "6,7,128")]),
        "odd_hex": bytes([0]) + text(
            [("CHAP_N", "alice"), ("CHAP_R", "0x" + "f" * 31)]),
        "bad_base64": bytes([0]) + text(
            [("CHAP_N", "bob"), ("CHAP_R", "0b====")]),
    }


def write_all(outdir, target, seeds):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    print("%s: %d seeds" % (d, len(seeds)))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    write_all(outdir, "scsi", scsi_seeds())
    write_all(outdir, "nbd", nbd_seeds())
    write_all(outdir, "iscsi", iscsi_seeds())
    write_all(outdir, "iscsi_keys", iscsi_keys_seeds())
    write_all(outdir, "iscsi_chap", iscsi_chap_seeds())


if __name__ == "__main__":
    main()
