#!/usr/bin/python3
"""server_attacks.py - hostile clients against a live spd-ramdisk serving
NBD and iSCSI in one process, with memory ceilings and connection limits
set low. For each attack one line: how long a fresh client (another
loopback address, 127.0.0.2) waited to be served while it ran, and the
server's RSS (VmRSS) before, at its highest during, and after it, next to
the configured ceiling. Asserted: the fresh client is served within
LIVENESS seconds, RSS stays under base + ceiling + SLACK, memory and slots
come back afterwards. Speed is never asserted.

  - NBD and iSCSI clients that send reads and never read the replies;
  - an NBD client mixing large and small reads, then idle (spare buffers
    go back after an idle second);
  - iSCSI sessions sending eight 64 MiB WRITE(16)s with all but the last
    bytes of their data;
  - a flood of connections from one address (the limit per peer, refusals
    logged once), idle connections filling every slot (they come back
    after the idle timeout), unauthenticated iSCSI logins trickling a byte
    a second (counted per peer, cut off at the login timeout);
  - out of descriptors (accepting pauses without spinning);
  - SIGTERM with non-reading NBD and iSCSI clients connected.

Usage: server_attacks.py BUILD_DIR WORK_DIR.  Exit 0 passed, 1 failed,
77 skipped.
"""
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

BUILD, WORK = sys.argv[1], sys.argv[2]
RAMDISK = os.path.join(BUILD, "devices", "spd-ramdisk")
MiB = 1 << 20
LIVENESS = 20           # seconds a fresh client may wait, generously
SLACK = 48              # MiB of RSS beyond the ceiling: stacks, heap, code
CEILING = 192           # --max-memory, MiB
CONN_CEILING = 64       # --max-connection-memory, MiB
PER_PEER = 8
FRESH = "127.0.0.2"     # the fresh client's own address

REQUEST_MAGIC, REPLY_MAGIC = 0x25609513, 0x67446698
CMD_READ, CMD_WRITE = 0, 1
INITIATOR = "iqn.2026-01.org.example:attacks"


DEVICES = []            # started, for fail() to stop


def fail(msg):
    print("FAIL - " + msg, file=sys.stderr, flush=True)
    for dev in DEVICES:
        dev.kill()
    sys.exit(1)


def ok(msg):
    print("ok - " + msg, flush=True)


def rss_mib(pid):
    """VmRSS in MiB; 0 once the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except FileNotFoundError:
        pass
    return 0


class Device:
    """spd-ramdisk in the background, its stderr collected."""

    def __init__(self, args, preexec_fn=None):
        self.proc = subprocess.Popen(
            [RAMDISK, "--size", "256M", "--nbd", "nbd://127.0.0.1:0/",
             "--iscsi", "127.0.0.1:0"] + args,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            preexec_fn=preexec_fn)
        DEVICES.append(self)
        self.err, self.lock = [], threading.Lock()
        threading.Thread(target=self._collect, daemon=True).start()
        deadline = time.time() + 30
        self.nbd = self.iscsi = None
        while time.time() < deadline and not (self.nbd and self.iscsi):
            with self.lock:
                for line in self.err:
                    m = re.search(r"serving nbd://127\.0\.0\.1:(\d+)/", line)
                    if m:
                        self.nbd = int(m.group(1))
                    m = re.search(r"serving iscsi://127\.0\.0\.1:(\d+)/(\S+)/0",
                                  line)
                    if m:
                        self.iscsi, self.iqn = int(m.group(1)), m.group(2)
            time.sleep(0.05)
        if not (self.nbd and self.iscsi):
            self.kill()
            fail("spd-ramdisk did not start: %s" % "".join(self.err))
        self.pid = self.proc.pid

    def _collect(self):
        for line in self.proc.stderr:
            with self.lock:
                self.err.append(line)

    def lines(self, pattern):
        with self.lock:
            return [l for l in self.err if re.search(pattern, l)]

    def rss(self):
        return rss_mib(self.pid)

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("spd-ramdisk did not stop within %d s of SIGTERM" % timeout)
        if status != 0:
            fail("spd-ramdisk exited with %d: %s" % (status, "".join(self.err)))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Peak:
    """The highest RSS of pid while the with-block runs."""

    def __init__(self, pid):
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.peak = max(self.peak, rss_mib(self.pid))
        self.done.set()
        self.thread.join()


def connect(port, source="127.0.0.1", timeout=10):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(source, 0))


def recv_exact(s, n):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = s.recv_into(view[got:])
        if not k:
            raise EOFError("connection closed")
        got += k
    return bytes(buf)


def drain(s, n):
    """Read and drop n bytes."""
    buf = bytearray(1 << 20)
    while n:
        k = s.recv_into(buf, min(n, len(buf)))
        if not k:
            raise EOFError("connection closed")
        n -= k


# ---------------------------------------------------------------------
# NBD

def nbd_handshake(s):
    recv_exact(s, 18)
    s.sendall(struct.pack(">I", 3))                 # fixed newstyle, no zeroes
    s.sendall(struct.pack(">QII", 0x49484156454F5054, 1, 0))
    recv_exact(s, 10)


def nbd_request(cmd, cookie, offset, length):
    return struct.pack(">IHHQQI", REQUEST_MAGIC, 0, cmd, cookie, offset,
                       length)


def nbd_reply(s, length):
    magic, error, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
    if magic != REPLY_MAGIC or error:
        raise EOFError("bad reply: magic %x error %d" % (magic, error))
    if length:
        drain(s, length)
    return cookie


def nbd_nonreader(port, stop, source="127.0.0.1"):
    """A client sending 1 MiB reads and never reading a reply."""
    s = connect(port, source)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    nbd_handshake(s)
    s.settimeout(0.5)

    def flood():
        cookie = 0
        while not stop.is_set() and cookie < 4096:
            try:
                s.sendall(nbd_request(CMD_READ, cookie, 0, MiB))
                cookie += 1
            except (socket.timeout, TimeoutError):
                continue                # the server takes no more: paused
            except OSError:
                return
    threading.Thread(target=flood, daemon=True).start()
    return s


def fresh_nbd(dev, deadline=LIVENESS):
    """Seconds until a fresh NBD client from FRESH had a write and a read
    answered (retrying while refused), or None after deadline."""
    start = time.time()
    while time.time() - start < deadline:
        try:
            s = connect(dev.nbd, FRESH, timeout=deadline)
            nbd_handshake(s)
            s.sendall(nbd_request(CMD_WRITE, 1, 1 << 27, 4096) + b"f" * 4096)
            nbd_reply(s, 0)
            s.sendall(nbd_request(CMD_READ, 2, 1 << 27, 4096))
            if nbd_reply(s, 0) != 2 or recv_exact(s, 4096) != b"f" * 4096:
                fail("the fresh client read wrong data")
            s.close()
            return time.time() - start
        except (EOFError, ConnectionError, socket.timeout, TimeoutError):
            time.sleep(0.1)             # refused: try again
    return None


# ---------------------------------------------------------------------
# iSCSI

def kv(pairs):
    return b"".join(("%s=%s" % p).encode() + b"\0" for p in pairs)


class Iscsi:
    def __init__(self, port, source="127.0.0.1"):
        self.s = connect(port, source)
        self.itt, self.cmdsn, self.statsn = 0x100, 0, 0

    def send(self, bhs, data=b""):
        bhs = bytearray(bhs)
        bhs[5:8] = len(data).to_bytes(3, "big")
        self.s.sendall(bytes(bhs) + data + b"\0" * (-len(data) % 4))

    def recv(self):
        bhs = recv_exact(self.s, 48)
        dsl = int.from_bytes(bhs[5:8], "big")
        data = recv_exact(self.s, dsl + (-dsl % 4))[:dsl] if dsl else b""
        return bhs, data

    def login(self, isid):
        bhs = bytearray(48)
        bhs[0], bhs[1] = 0x43, 0x87             # T, CSG 1, NSG 3
        bhs[8:14] = isid
        struct.pack_into(">IHHII", bhs, 16, 0x42, 0, 0, 0, 0)
        self.send(bhs, kv([
            ("InitiatorName", INITIATOR), ("SessionType", "Normal"),
            ("TargetName", self.iqn), ("HeaderDigest", "None"),
            ("DataDigest", "None"), ("InitialR2T", "Yes"),
            ("ImmediateData", "No"), ("MaxRecvDataSegmentLength", "262144"),
            ("MaxBurstLength", "16776192"), ("FirstBurstLength", "65536"),
            ("MaxOutstandingR2T", "1"), ("ErrorRecoveryLevel", "0")]))
        bhs, _ = self.recv()
        if bhs[36] or bhs[37] or bhs[1] & 3 != 3:
            raise EOFError("login refused: %02x%02x" % (bhs[36], bhs[37]))
        self.statsn = struct.unpack(">I", bhs[24:28])[0] + 1

    def command(self, cdb, edtl=0, read=False, write=False):
        bhs = bytearray(48)
        bhs[0] = 0x01
        bhs[1] = 0x80 | (0x40 if read else 0) | (0x20 if write else 0) | 1
        self.itt += 1
        struct.pack_into(">IIII", bhs, 16, self.itt, edtl, self.cmdsn,
                         self.statsn)
        self.cmdsn += 1
        bhs[32:32 + len(cdb)] = cdb
        self.send(bhs)
        return self.itt

    def data_out(self, itt, ttt, datasn, offset, data, final):
        bhs = bytearray(48)
        bhs[0], bhs[1] = 0x05, 0x80 if final else 0
        struct.pack_into(">IIIII", bhs, 16, itt, ttt, 0, self.statsn, 0)
        struct.pack_into(">II", bhs, 36, datasn, offset)
        self.send(bhs, data)


def iscsi_session(dev, source="127.0.0.1", isid_n=1):
    c = Iscsi(dev.iscsi, source)
    c.iqn = dev.iqn
    c.login(b"\x80\0\0\0" + struct.pack(">H", isid_n))
    return c


def read16(lba, blocks):
    return struct.pack(">BBQIBB", 0x88, 0, lba, blocks, 0, 0)


def write16(lba, blocks):
    return struct.pack(">BBQIBB", 0x8A, 0, lba, blocks, 0, 0)


def fresh_iscsi(dev, deadline=LIVENESS):
    """Seconds until a fresh iSCSI session from FRESH logged in and read
    4 KiB, or None."""
    start = time.time()
    while time.time() - start < deadline:
        try:
            c = iscsi_session(dev, FRESH, 0x7777)
            c.s.settimeout(deadline)
            # The first command of a new I_T nexus reports the power-on
            # unit attention instead of running: then once more.
            for _ in range(2):
                c.command(read16(0, 8), 4096, read=True)
                while True:
                    bhs, seg = c.recv()
                    op = bhs[0] & 0x3F
                    if (op == 0x25 and bhs[1] & 1) or op == 0x21:
                        break
                if not (bhs[3] == 2 and len(seg) > 4 and seg[4] & 0x0F == 6):
                    break
            c.s.close()
            if bhs[3] != 0:
                fail("the fresh iSCSI client got status %#x" % bhs[3])
            return time.time() - start
        except (EOFError, ConnectionError, socket.timeout, TimeoutError):
            time.sleep(0.1)
    return None


def iscsi_nonreader(dev, stop):
    """A session sending 1 MiB READ(16)s and never reading a reply."""
    c = iscsi_session(dev, isid_n=2)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.s.settimeout(0.5)

    def flood():
        sent = 0
        while not stop.is_set() and sent < 4096:
            try:
                c.command(read16(0, 2048), MiB, read=True)
                sent += 1
            except (socket.timeout, TimeoutError):
                c.cmdsn -= 1
                continue
            except OSError:
                return
    threading.Thread(target=flood, daemon=True).start()
    return c


def partial_writes(dev, isid_n):
    """Eight 64 MiB WRITE(16)s; each admitted one gets all its data but
    the last 512 bytes. The statuses of the refused ones."""
    c = iscsi_session(dev, isid_n=isid_n)
    c.s.settimeout(20)
    size, chunk = 64 * MiB, bytes(262144)
    for i in range(8):
        c.command(write16((i % 4) * (size // 512), size // 512), size,
                  write=True)
    refused, admitted = [], 0
    while len(refused) + admitted < 8:
        bhs, _ = c.recv()
        op = bhs[0] & 0x3F
        if op == 0x21:
            refused.append(bhs[3])
            continue
        if op != 0x31:
            fail("unexpected iSCSI PDU %#x" % op)
        itt, ttt = struct.unpack(">II", bhs[16:24])
        offset, length = struct.unpack(">II", bhs[40:48])
        end = offset + length
        last = end == size
        if last:
            end -= 512                  # all but the last bytes
            admitted += 1
        datasn, at = 0, offset
        while at < end:
            n = min(len(chunk), end - at)
            c.data_out(itt, ttt, datasn, at, chunk[:n],
                       final=not last and at + n == end)
            at, datasn = at + n, datasn + 1
    return c, refused, admitted


# ---------------------------------------------------------------------
# The attacks

ROWS = []


def row(attack, wait, before, during, after, ceiling):
    line = "%-44s fresh %-8s RSS %4d / %4d / %4d MiB  ceiling %s" % (
        attack, "%.2f s" % wait if wait is not None else "-", before, during,
        after, ceiling)
    ROWS.append(line)
    print("# " + line, flush=True)


def check_rss(attack, base, during, after, ceiling=CEILING):
    if during > base + ceiling + SLACK:
        fail("%s: RSS %d MiB over %d + %d + %d MiB" % (attack, during, base,
                                                      ceiling, SLACK))
    if after is not None and after > base + SLACK:
        fail("%s: RSS %d MiB after it ended, base %d MiB" % (attack, after,
                                                             base))


def check_fresh(attack, wait):
    if wait is None:
        fail("%s: a fresh client was not served within %d s" % (attack,
                                                                LIVENESS))


def settle(dev, base, seconds=6):
    """RSS once spare buffers went back (an idle second, then a tick)."""
    deadline = time.time() + seconds
    while time.time() < deadline and dev.rss() > base + 8:
        time.sleep(0.2)
    return dev.rss()


def attack_nonreaders(dev, base):
    for name, start in (("NBD", lambda st: nbd_nonreader(dev.nbd, st)),
                        ("iSCSI", lambda st: iscsi_nonreader(dev, st))):
        attack = "%s client not reading its replies" % name
        before = dev.rss()
        stop = threading.Event()
        with Peak(dev.pid) as peak:
            bad = start(stop)
            time.sleep(2)
            wait = fresh_nbd(dev)
            check_fresh(attack, wait)
            stop.set()
            bad = bad.s if hasattr(bad, "s") else bad
            bad.close()
        after = settle(dev, base)
        row(attack, wait, before, peak.peak, after, "%d MiB" % CEILING)
        check_rss(attack, base, peak.peak, after)
        ok(attack + ": others served, memory bounded and given back")


def attack_mixed_reads(dev, base):
    attack = "NBD mixed 32 MiB and 4 KiB reads, then idle"
    before = dev.rss()
    s = connect(dev.nbd)
    nbd_handshake(s)
    s.settimeout(30)
    with Peak(dev.pid) as peak:
        for _ in range(2):
            n = 0
            for i in range(8):
                s.sendall(nbd_request(CMD_READ, n, i * 32 * MiB, 32 * MiB))
                n += 1
                for j in range(8):
                    s.sendall(nbd_request(CMD_READ, n, j * 4096, 4096))
                    n += 1
            lengths = {}
            for i in range(n):
                lengths[i] = 32 * MiB if i % 9 == 0 else 4096
            for _ in range(n):
                cookie = nbd_reply(s, 0)
                drain(s, lengths.pop(cookie))
        wait = fresh_nbd(dev)
    check_fresh(attack, wait)
    after = settle(dev, base)               # the connection stays open
    row(attack, wait, before, peak.peak, after, "%d MiB per connection" %
        CONN_CEILING)
    check_rss(attack, base, peak.peak, after, CONN_CEILING)
    s.close()
    ok(attack + ": spares bounded, given back after an idle second")


def attack_partial_writes(dev, base):
    attack = "iSCSI 8 x 64 MiB WRITE(16), data short, x3"
    before = dev.rss()
    sessions = []
    with Peak(dev.pid) as peak:
        for n in range(3):
            c, refused, admitted = partial_writes(dev, 10 + n)
            sessions.append(c)
            if any(st != 0x28 for st in refused) or admitted + \
                    len(refused) != 8:
                fail("%s: statuses %r" % (attack, refused))
        time.sleep(0.5)
        wait = fresh_nbd(dev)
        check_fresh(attack, wait)
        wait2 = fresh_iscsi(dev)
        check_fresh(attack + " (iSCSI)", wait2)
        during = dev.rss()
    for c in sessions:
        c.s.close()
    after = settle(dev, base)
    row(attack, max(wait, wait2), before, peak.peak, after, "%d MiB" % CEILING)
    check_rss(attack, base, peak.peak, after)
    ok("%s: TASK SET FULL beyond the ceilings, %d MiB held at most, "
       "given back when the sessions end" % (attack, during - before))


def attack_flood(dev, base):
    attack = "300 connections from one address"
    before = dev.rss()
    socks, refused = [], 0
    with Peak(dev.pid) as peak:
        for _ in range(300):
            try:
                socks.append(connect(dev.nbd))
            except OSError:
                refused += 1
        wait = fresh_nbd(dev)
        check_fresh(attack, wait)
        held = 0
        for s in socks:
            s.settimeout(0.2)
            try:
                if s.recv(1):
                    held += 1           # its greeting: it holds a slot
            except (socket.timeout, TimeoutError):
                held += 1
            except OSError:
                pass
    if held > PER_PEER:
        fail("%s: %d connections held slots, at most %d per peer" %
             (attack, held, PER_PEER))
    logged = dev.lines(r"refused a connection from 127\.0\.0\.1:")
    if len(logged) != 1:
        fail("%s: %d log lines for the refused peer, want 1" % (attack,
                                                              len(logged)))
    for s in socks:
        s.close()
    wait_back = fresh_nbd(dev)              # as a new client: slots back
    check_fresh(attack + " (after)", wait_back)
    after = dev.rss()
    row(attack, wait, before, peak.peak, after, "%d per peer" % PER_PEER)
    check_rss(attack, base, peak.peak, after)
    ok("%s: %d held slots, refusals logged once, fresh client served" %
       (attack, held))


def attack_login_trickle(dev, base):
    attack = "unauthenticated iSCSI logins, a byte a second"
    before = dev.rss()
    socks, stop = [], threading.Event()
    for _ in range(40):
        try:
            socks.append(connect(dev.iscsi))
        except OSError:
            pass
    login = bytearray(48)
    login[0] = 0x43

    def trickle():
        for i in range(48):
            for s in socks:
                try:
                    s.send(bytes(login[i:i + 1]))
                except OSError:
                    pass
            if stop.wait(1):
                return
    threading.Thread(target=trickle, daemon=True).start()
    time.sleep(1)
    start = time.time()
    with Peak(dev.pid) as peak:
        wait = fresh_iscsi(dev)
        check_fresh(attack, wait)
    # Cut off at the login timeout: the address gets its slots back.
    wait_back = None
    while time.time() - start < LIVENESS:
        try:
            c = iscsi_session(dev, isid_n=0x55)
            c.s.close()
            wait_back = time.time() - start
            break
        except (EOFError, ConnectionError, socket.timeout, TimeoutError):
            time.sleep(0.2)
    stop.set()
    if wait_back is None:
        fail("%s: the trickling peer's slots never came back" % attack)
    for s in socks:
        s.close()
    after = dev.rss()
    row(attack, wait, before, peak.peak, after, "%d per peer" % PER_PEER)
    check_rss(attack, base, peak.peak, after)
    ok("%s: counted per peer, a fresh login served in %.2f s, slots back "
       "after %.1f s" % (attack, wait, wait_back))


def attack_idle_slots():
    attack = "idle connections in every slot"
    dev = Device(["--max-connections", "16", "--max-connections-per-peer",
                  "16", "--idle-timeout", "2"])
    before = dev.rss()
    socks = []
    for _ in range(16):
        s = connect(dev.nbd)
        nbd_handshake(s)
        socks.append(s)
    with Peak(dev.pid) as peak:
        wait = fresh_nbd(dev)
    check_fresh(attack, wait)
    if not dev.lines(r"refused a connection from 127\.0\.0\.2:.*16 "
                     r"connections at once"):
        fail("%s: the fresh client was not refused at first" % attack)
    for s in socks:
        s.close()
    after = dev.rss()
    dev.stop()
    row(attack, wait, before, peak.peak, after, "16 slots, idle timeout 2 s")
    ok("%s: slots come back after the idle timeout (fresh client served "
       "after %.2f s)" % (attack, wait))


def attack_nop_slots():
    attack = "iSCSI sessions kept alive by NOP-Outs alone"
    dev = Device(["--max-connections", "16", "--max-connections-per-peer",
                  "16", "--idle-timeout", "2"])
    before = dev.rss()
    sessions = [iscsi_session(dev, isid_n=0x100 + i) for i in range(16)]
    stop = threading.Event()

    def ping():
        itt = 0x9000
        while not stop.wait(0.5):
            for c in sessions:
                bhs = bytearray(48)
                bhs[0], bhs[1] = 0x40, 0x80          # immediate NOP-Out
                itt += 1
                struct.pack_into(">IIII", bhs, 16, itt, 0xFFFFFFFF, c.cmdsn,
                                 c.statsn)
                try:
                    c.send(bhs)
                except OSError:
                    pass
    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    with Peak(dev.pid) as peak:
        wait = fresh_iscsi(dev)
    stop.set()
    pinger.join()
    check_fresh(attack, wait)
    if not dev.lines(r"refused a connection from 127\.0\.0\.2"):
        fail("%s: the fresh client was not refused at first" % attack)
    for c in sessions:
        c.s.settimeout(10)
        try:
            while c.s.recv(65536):
                pass
        except socket.timeout:
            fail("%s: a session pinging but idle was not closed" % attack)
        except OSError:
            pass
        c.s.close()
    after = dev.rss()
    dev.stop()
    row(attack, wait, before, peak.peak, after, "16 slots, idle timeout 2 s")
    ok("%s: closed after the idle timeout all the same (fresh client "
       "served after %.2f s)" % (attack, wait))


def attack_descriptors():
    attack = "out of descriptors"

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    dev = Device(["--max-connections-per-peer", "100"], preexec_fn=limit)
    before = dev.rss()
    socks = []
    with Peak(dev.pid) as peak:
        for _ in range(60):
            s = connect(dev.nbd, timeout=1)
            try:
                nbd_handshake(s)
                socks.append(s)
            except (socket.timeout, TimeoutError):
                s.close()
                break                   # in the backlog: accepting paused
            except (EOFError, ConnectionError):
                s.close()
        stat0 = open("/proc/%d/stat" % dev.pid).read().rsplit(")", 1)[1]
        threading.Timer(1.0, lambda: socks.pop().close()).start()
        wait = fresh_nbd(dev)
        stat1 = open("/proc/%d/stat" % dev.pid).read().rsplit(")", 1)[1]
    check_fresh(attack, wait)
    ticks = sum(int(stat1.split()[i]) - int(stat0.split()[i])
                for i in (11, 12))
    spent = ticks / os.sysconf("SC_CLK_TCK")
    if spent > 0.5 + wait / 2:
        fail("%s: the server spun: %.2f s CPU in %.2f s" % (attack, spent,
                                                           wait))
    # Once per pause: when the freed slot went to a waiting client, the
    # fresh one pauses accepting again.
    if not 1 <= len(dev.lines("pausing new connections")) <= 3:
        fail("%s: want a 'pausing' line per pause: %s" % (attack,
                                                         "".join(dev.err)))
    for s in socks:
        s.close()
    after = dev.rss()
    dev.stop()
    row(attack, wait, before, peak.peak, after, "48 descriptors")
    ok("%s: accepting pauses (%.2f s CPU), logged once a pause, the fresh client "
       "served when a slot freed" % (attack, spent))


def attack_sigterm(dev, base):
    attack = "SIGTERM with non-reading NBD and iSCSI clients"
    before = dev.rss()
    stop = threading.Event()
    with Peak(dev.pid) as peak:
        a = nbd_nonreader(dev.nbd, stop)
        b = iscsi_nonreader(dev, stop)
        time.sleep(2)
        start = time.time()
        dev.stop(timeout=60)
    took = time.time() - start
    stop.set()
    a.close()
    b.s.close()
    row(attack, None, before, peak.peak, 0, "%d MiB; stopped in %.1f s" %
        (CEILING, took))
    check_rss(attack, base, peak.peak, None)
    ok("%s: stopped in %.1f s" % (attack, took))


def main():
    if not os.access(RAMDISK, os.X_OK):
        print("SKIP - %s is not built" % RAMDISK)
        sys.exit(77)
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1,
                                 source_address=(FRESH, 0)).close()
    except ConnectionRefusedError:
        pass
    except OSError as e:
        print("SKIP - no loopback address %s: %s" % (FRESH, e))
        sys.exit(77)
    t0 = time.time()
    dev = Device(["--max-memory", "%dM" % CEILING, "--max-connection-memory",
                  "%dM" % CONN_CEILING, "--max-connections-per-peer",
                  str(PER_PEER), "--handshake-timeout", "4", "--threads",
                  "4"])
    fresh_nbd(dev)
    base = dev.rss()
    attack_nonreaders(dev, base)
    attack_mixed_reads(dev, base)
    attack_partial_writes(dev, base)
    attack_flood(dev, base)
    attack_login_trickle(dev, base)
    attack_sigterm(dev, base)
    attack_idle_slots()
    attack_nop_slots()
    attack_descriptors()
    print("# attack                                       fresh wait  "
          "RSS before / during / after")
    for line in ROWS:
        print("# " + line)
    ok("all attacks in %.0f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
