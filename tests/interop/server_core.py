#!/usr/bin/python3
"""server_core.py - the network server core that the NBD server and the
iSCSI target share, driven through nbd_serve (and iscsi_serve for socket
activation) with plain sockets:

  - port 0: the listener URI names the real port, and it serves there;
  - systemd socket activation (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES),
    with systemd-socket-activate when installed and a small wrapper here;
  - the connection cap: the client beyond it is refused with a log line,
    and a slot comes back when a client leaves;
  - out of descriptors: accepting pauses (logged once), then resumes;
  - idle and handshake timeouts;
  - a client that sends many reads and never reads the replies holds back
    only itself: another client is served meanwhile, and SIGTERM still
    stops the server.

Usage: server_core.py BUILD_DIR WORK_DIR.  Exit 0 passed, 1 failed.
"""
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

BUILD, WORK = sys.argv[1], sys.argv[2]
NBD_SERVE = os.path.join(BUILD, "tests", "nbd_serve")
ISCSI_SERVE = os.path.join(BUILD, "tests", "iscsi_serve")

NBD_MAGIC = 0x4E42444D41474943
OPTS_MAGIC = 0x49484156454F5054
REQUEST_MAGIC = 0x25609513
REPLY_MAGIC = 0x67446698
CMD_READ, CMD_WRITE = 0, 1


def fail(msg):
    print("FAIL - " + msg, file=sys.stderr)
    sys.exit(1)


def ok(msg):
    print("ok - " + msg)


class Server:
    """nbd_serve (or another command) in the background; its output lines
    are collected by a thread."""

    def __init__(self, args, prog=None, ready=True, pass_fds=(),
                 preexec_fn=None):
        self.proc = subprocess.Popen(
            (prog or [NBD_SERVE]) + args, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, pass_fds=pass_fds,
            preexec_fn=preexec_fn)
        self.out, self.err = [], []
        self.lock = threading.Lock()
        for stream, into in ((self.proc.stdout, self.out),
                             (self.proc.stderr, self.err)):
            threading.Thread(target=self._collect, args=(stream, into),
                             daemon=True).start()
        if ready and not self.wait_line(self.out, r"^ready", 30):
            self.kill()
            fail("server did not start: %s\n%s" % (args, "".join(self.err)))

    def _collect(self, stream, into):
        for line in stream:
            with self.lock:
                into.append(line)

    def wait_line(self, into, pattern, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for line in into:
                    if re.search(pattern, line):
                        return line
            if self.proc.poll() is not None and not into:
                time.sleep(0.1)
            time.sleep(0.05)
        return None

    def uris(self):
        with self.lock:
            return [l.split()[1] for l in self.out if l.startswith("listening ")]

    def stop(self, timeout=60):
        """SIGTERM; it must exit 0 within timeout seconds."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("the server did not stop within %d s of SIGTERM" % timeout)
        if status != 0:
            fail("the server exited with %d:\n%s" % (status, "".join(self.err)))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def tcp_port(uri):
    m = re.match(r"^nbd://127\.0\.0\.1:(\d+)$", uri)
    if not m:
        fail("listener URI %r is not nbd://127.0.0.1:PORT" % uri)
    return int(m.group(1))


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def connect(addr, timeout=10):
    family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(addr)
    return s


def handshake(s):
    """Fixed newstyle, NBD_OPT_EXPORT_NAME "": the export size."""
    magic, opts, _ = struct.unpack(">QQH", recv_exact(s, 18))
    if magic != NBD_MAGIC or opts != OPTS_MAGIC:
        fail("bad greeting")
    s.sendall(struct.pack(">I", 3))            # fixed newstyle, no zeroes
    s.sendall(struct.pack(">QII", OPTS_MAGIC, 1, 0))
    size, _ = struct.unpack(">QH", recv_exact(s, 10))
    return size


def request(cmd, cookie, offset, length):
    return struct.pack(">IHHQQI", REQUEST_MAGIC, 0, cmd, cookie, offset,
                       length)


def read_reply(s, length):
    magic, error, cookie = struct.unpack(">IIQ", recv_exact(s, 16))
    if magic != REPLY_MAGIC or error:
        fail("bad reply: magic %x error %d" % (magic, error))
    return cookie, recv_exact(s, length) if length else b""


def closed_within(s, seconds):
    """True when the server closes s within seconds (reading all)."""
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
        return True
    except (socket.timeout, TimeoutError):
        return False
    except ConnectionResetError:
        return True


def serves(addr):
    s = connect(addr)
    size = handshake(s)
    s.sendall(request(CMD_WRITE, 7, 4096, 512) + b"x" * 512)
    read_reply(s, 0)
    s.sendall(request(CMD_READ, 8, 4096, 512))
    cookie, data = read_reply(s, 512)
    s.close()
    return size == 16 << 20 and cookie == 8 and data == b"x" * 512


def test_port_zero():
    srv = Server(["nbd://127.0.0.1:0", "16"])
    uris = srv.uris()
    if len(uris) != 1:
        fail("one listener URI expected, got %r" % uris)
    port = tcp_port(uris[0])
    if port == 0:
        fail("listener URI still says port 0")
    if not serves(("127.0.0.1", port)):
        fail("no service at the reported port")
    srv.stop()
    ok("port 0: listener_uri names the real port, served there")


def test_systemd():
    # Without sockets from systemd: a clear error, no service.
    env = dict(os.environ)
    for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        env.pop(k, None)
    r = subprocess.run([NBD_SERVE, "systemd", "16"], env=env,
                       capture_output=True, text=True, timeout=30)
    if r.returncode == 0 or "LISTEN_FDS" not in r.stderr:
        fail("systemd without LISTEN_FDS: %d %r" % (r.returncode, r.stderr))

    # The wrapper here: a named socket, taken by "systemd:NAME".
    path = os.path.join(WORK, "sd-py.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(16)
    code = ("import os,sys\n"
            "os.dup2(int(sys.argv[1]), 3)\n"
            "os.environ['LISTEN_FDS'] = '1'\n"
            "os.environ['LISTEN_PID'] = str(os.getpid())\n"
            "os.environ['LISTEN_FDNAMES'] = 'disk'\n"
            "os.execv(sys.argv[2], sys.argv[2:])\n")
    srv = Server([], prog=[sys.executable, "-c", code, str(lsock.fileno()),
                           NBD_SERVE, "systemd:disk", "16"], ready=False,
                 pass_fds=(lsock.fileno(),))
    lsock.close()
    if not srv.wait_line(srv.out, r"^ready", 30):
        srv.kill()
        fail("socket-activated server did not start: %s" % "".join(srv.err))
    uris = srv.uris()
    if uris != ["nbd+unix:///?socket=" + path]:
        fail("listener URI of the inherited socket: %r" % uris)
    if not serves(path):
        fail("no service on the socket passed as systemd does")
    srv.stop()
    if not os.path.exists(path):
        fail("the server removed a socket file it did not create")
    ok("systemd:NAME takes a socket passed with LISTEN_FDS/LISTEN_PID/"
       "LISTEN_FDNAMES")

    # A name that was not passed: refused.
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path2 = os.path.join(WORK, "sd-py2.sock")
    lsock.bind(path2)
    lsock.listen(1)
    r = subprocess.run([sys.executable, "-c", code, str(lsock.fileno()),
                        NBD_SERVE, "systemd:other", "16"],
                       capture_output=True, text=True, timeout=30,
                       pass_fds=(lsock.fileno(),))
    lsock.close()
    if r.returncode == 0 or "LISTEN_FDNAMES" not in r.stderr:
        fail("systemd:other with no such name: %d %r" % (r.returncode,
                                                        r.stderr))
    ok("systemd:NAME with no socket of that name is refused")

    # The iSCSI target takes the same addresses.
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    srv = Server([], prog=[sys.executable, "-c", code, str(lsock.fileno()),
                           ISCSI_SERVE, "systemd", "iqn.2026-01.org.example:sd",
                           "16", "512"], ready=False,
                 pass_fds=(lsock.fileno(),))
    lsock.close()
    line = srv.wait_line(srv.out, r"^ready", 30)
    if not line or line.split()[1] != "iscsi://127.0.0.1:%d" % port:
        srv.kill()
        fail("socket-activated iSCSI target: %r %s" % (line, "".join(srv.err)))
    s = connect(("127.0.0.1", port))
    s.close()
    srv.stop()
    ok("the iSCSI target takes a socket passed by systemd too")

    tool = shutil.which("systemd-socket-activate")
    if not tool:
        print("# systemd-socket-activate is not installed: only the wrapper")
        return
    path = os.path.join(WORK, "sd.sock")
    srv = Server([], prog=[tool, "-l", path, "--fdname=nbd", NBD_SERVE,
                           "systemd:nbd", "16"], ready=False)
    # systemd-socket-activate starts the program on the first connection.
    deadline = time.time() + 30
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    if not serves(path):
        srv.kill()
        fail("no service under systemd-socket-activate: %s" % "".join(srv.err))
    srv.stop()
    ok("systemd-socket-activate --fdname=nbd, served as systemd:nbd")


def test_cap():
    srv = Server(["nbd://127.0.0.1:0", "16", "--max-connections", "2"])
    addr = ("127.0.0.1", tcp_port(srv.uris()[0]))
    a, b = connect(addr), connect(addr)
    handshake(a)
    handshake(b)
    c = connect(addr)
    try:
        handshake(c)
        fail("a third client was served with --max-connections 2")
    except (EOFError, ConnectionResetError):
        pass
    c.close()
    if not srv.wait_line(srv.err, r"refused a connection from 127\.0\.0\.1:\d+",
                         10):
        fail("no log line for the refused client: %r" % srv.err)
    a.close()
    deadline = time.time() + 10
    while True:
        d = connect(addr)
        try:
            handshake(d)
            break
        except (EOFError, ConnectionResetError):
            d.close()
            if time.time() > deadline:
                fail("no slot came back after a client left")
            time.sleep(0.1)
    d.close()
    b.close()
    srv.stop()
    with srv.lock:
        refused = [l for l in srv.err if "refused" in l]
    if not refused or len(refused) > 50:
        fail("refusals logged: %d lines" % len(refused))
    ok("connection cap: the client beyond it refused and logged, the slot "
       "comes back")


def cpu_seconds(pid):
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors():
    """With few descriptors, accepting pauses (logged once) instead of
    spinning, and resumes when a client leaves."""
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))
    srv = Server(["nbd://127.0.0.1:0", "16", "--threads", "0"],
                 preexec_fn=limit)
    addr = ("127.0.0.1", tcp_port(srv.uris()[0]))
    clients, waiting = [], None
    for _ in range(30):
        s = connect(addr, timeout=1.5)
        try:
            handshake(s)
            clients.append(s)
        except (EOFError, ConnectionResetError):
            s.close()                   # taken, then no room for it
        except (socket.timeout, TimeoutError):
            waiting = s                 # left in the backlog: paused
            break
    if not waiting or not clients:
        fail("never ran out of descriptors (%d clients)" % len(clients))
    before = cpu_seconds(srv.proc.pid)
    time.sleep(2)
    spent = cpu_seconds(srv.proc.pid) - before
    if spent > 0.5:
        fail("the server spun while out of descriptors: %.2f s CPU" % spent)
    with srv.lock:
        logged = [l for l in srv.err if "pausing new connections" in l]
    if len(logged) != 1:
        fail("want one 'pausing' line, got %r" % srv.err)
    clients.pop().close()
    waiting.settimeout(10)
    handshake(waiting)                  # served once a slot came back
    waiting.close()
    for s in clients:
        s.close()
    srv.stop()
    ok("out of descriptors: accepting pauses, logged once, no spinning "
       "(%.2f s CPU in 2 s), resumes when a client leaves" % spent)


def test_timeouts():
    srv = Server(["nbd://127.0.0.1:0", "16", "--idle-timeout", "1",
                  "--handshake-timeout", "2"])
    addr = ("127.0.0.1", tcp_port(srv.uris()[0]))
    s = connect(addr)
    handshake(s)
    s.sendall(request(CMD_READ, 1, 0, 512))
    read_reply(s, 512)
    if not closed_within(s, 10):
        fail("an idle client was not dropped by --idle-timeout 1")
    s.close()
    ok("idle timeout closes a connection with no requests")

    s = connect(addr)
    recv_exact(s, 18)                       # the greeting, then silence
    if not closed_within(s, 15):
        fail("a stalled handshake was not dropped by --handshake-timeout 2")
    s.close()
    # A client that trickles a byte now and then still meets the deadline.
    s = connect(addr)
    recv_exact(s, 18)
    start = time.time()
    s.sendall(struct.pack(">I", 3))
    dropped = False
    for b in struct.pack(">QII", OPTS_MAGIC, 1, 0):
        time.sleep(0.5)
        try:
            s.sendall(bytes([b]))
        except OSError:
            dropped = True
            break
    if not dropped and not closed_within(s, 10):
        fail("a trickling handshake outlived its deadline")
    if time.time() - start > 12:
        fail("the handshake deadline took too long")
    s.close()
    srv.stop()
    ok("handshake timeout: a silent or trickling handshake is dropped")


def test_non_reading_client():
    srv = Server(["nbd://127.0.0.1:0", "64", "--threads", "2"])
    addr = ("127.0.0.1", tcp_port(srv.uris()[0]))
    bad = connect(addr)
    bad.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    handshake(bad)
    # Many 1 MiB reads, replies never read: far more than any socket holds.
    stop_sending = threading.Event()

    def flood():
        bad.settimeout(1)
        cookie = 0
        while not stop_sending.is_set() and cookie < 4096:
            try:
                bad.sendall(request(CMD_READ, cookie, 0, 1 << 20))
                cookie += 1
            except (socket.timeout, TimeoutError):
                continue                    # the server stopped taking them
            except OSError:
                return
    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    time.sleep(2)

    # Meanwhile another client gets prompt service.
    start = time.time()
    good = connect(addr, timeout=20)
    handshake(good)
    for i in range(200):
        good.sendall(request(CMD_WRITE, i, 8192 * i, 4096) + bytes([i]) * 4096)
        read_reply(good, 0)
        good.sendall(request(CMD_READ, i, 8192 * i, 4096))
        cookie, data = read_reply(good, 4096)
        if cookie != i or data != bytes([i]) * 4096:
            fail("wrong data for the second client")
    good.close()
    took = time.time() - start
    if took > 20:
        fail("the second client took %.1f s beside a non-reading one" % took)
    ok("a client that does not read its replies holds back only itself "
       "(the other did 400 requests in %.2f s)" % took)

    # SIGTERM with the bad client still connected and still not reading.
    start = time.time()
    srv.stop(timeout=60)
    stop_sending.set()
    bad.close()
    ok("SIGTERM stops the server with a non-reading client connected "
       "(%.1f s)" % (time.time() - start))


def main():
    for prog in (NBD_SERVE, ISCSI_SERVE):
        if not os.access(prog, os.X_OK):
            print("SKIP - %s is not built" % prog)
            sys.exit(77)
    test_port_zero()
    test_systemd()
    test_cap()
    test_out_of_descriptors()
    test_timeouts()
    test_non_reading_client()


if __name__ == "__main__":
    main()
