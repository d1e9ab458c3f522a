"""Devices written in Python, served in this process and driven by real
clients (libnbd's Python binding, nbdinfo, libiscsi's tools) and through
the unit's own SCSI engine: errors, exceptions, buffers, threads,
asynchronous completion, asyncio, and shutdown with requests in flight."""
import asyncio
import contextlib
import errno
import logging
import struct
import threading
import time

import pytest

import spd
from conftest import need, run

nbd = pytest.importorskip("nbd", reason="python3-libnbd is not installed")

BL = 512


class Ram:
    """A plain RAM disk: read/write/flush/unmap."""

    def __init__(self, size):
        self.data = bytearray(size)
        self.flushes = 0

    def read(self, lba, count):
        return self.data[lba * BL:(lba + count) * BL]

    def write(self, lba, buf, fua):
        self.data[lba * BL:lba * BL + len(buf)] = buf

    def flush(self):
        self.flushes += 1

    def unmap(self, ranges):
        for lba, count in ranges:
            self.data[lba * BL:(lba + count) * BL] = bytes(count * BL)


@contextlib.contextmanager
def served(tmp_path, device, size=1 << 20, **kw):
    """The device as a unit served over NBD on a Unix socket, and a
    connected libnbd handle."""
    with spd.Unit(device, size=size, **kw) as unit:
        export = unit.serve_nbd("nbd+unix:///?socket=%s" % (tmp_path / "s"))
        h = nbd.NBD()
        h.connect_uri(export.uris[0])
        try:
            yield unit, h
        finally:
            h.shutdown()


def nbd_errno(call):
    """The errno (a number) of the NBD error call gets."""
    with pytest.raises(nbd.Error) as e:
        call()
    err = e.value.errno
    return getattr(errno, err) if isinstance(err, str) else err


def sense_of(unit, cdb, **kw):
    """(status, sense key, ASC, ASCQ, information) of a SCSI command."""
    status, _, sense = unit.scsi(cdb, data_in=kw.pop("data_in", 65536), **kw)
    if status != 2:
        return status, None, None, None, None
    if sense[0] & 0x7f in (0x70, 0x71):         # fixed format
        info = struct.unpack(">I", sense[3:7])[0] if sense[0] & 0x80 else None
        return status, sense[2] & 0xf, sense[12], sense[13], info
    return status, sense[1] & 0xf, sense[2], sense[3], None


def read10(lba, count):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, count, 0)


# -------------------------------------------------------------------------
# Data through NBD


def test_nbd_round_trip(tmp_path):
    dev = Ram(1 << 20)
    with served(tmp_path, dev) as (unit, h):
        assert h.get_size() == 1 << 20
        pattern = bytes(range(256)) * 64
        h.pwrite(pattern, 8192)
        assert h.pread(len(pattern), 8192) == pattern
        assert dev.data[8192:8192 + len(pattern)] == pattern
        h.flush()
        assert dev.flushes >= 1
        h.trim(4096, 8192)
        assert h.pread(4096, 8192) == bytes(4096)
        assert unit.pread(512, 12288) == pattern[4096:4608]
        unit.pwrite(b"x" * 100, 3, fua=True)     # a partial block
        assert unit.pread(104, 0) == bytes(3) + b"x" * 100 + bytes(1)
        assert h.pread(512, 0)[:104] == bytes(3) + b"x" * 100 + bytes(1)


def test_params(tmp_path):
    with spd.Unit(Ram(1 << 20), size=1 << 20, block_length=4096,
                  product_id="pydisk") as unit:
        assert (unit.block_count, unit.block_length, unit.size) == \
            (256, 4096, 1 << 20)
        _, data, _ = unit.scsi(struct.pack(">BBBHB", 0x12, 0, 0, 96, 0),
                               data_in=96)
        assert data[16:32].rstrip() == b"pydisk"
    assert unit.closed
    with spd.Unit(Ram(1 << 20), size=1 << 20,
                  physical_block_length=4096) as unit:   # 512e
        _, data, _ = unit.scsi(struct.pack(">BB8xIxx", 0x9e, 0x10, 32),
                               data_in=32)
        assert data[13] == 3    # LBPPBE: 2^3 blocks per physical block
    with pytest.raises(ValueError, match="closed"):
        unit.pread(512, 0)
    with pytest.raises(ValueError, match="multiple"):
        spd.Unit(Ram(1000), size=1000)
    with pytest.raises(ValueError):
        spd.Unit(Ram(1 << 20), size=1 << 20, block_length=1000)
    with pytest.raises(ValueError, match="physical_block_length"):
        spd.Unit(Ram(1 << 20), size=1 << 20, physical_block_length=1536)
    with pytest.raises(TypeError, match="read"):
        spd.Unit(object(), size=1 << 20)


def test_read_only_device(tmp_path):
    class ReadOnly:
        def read(self, lba, count):
            return bytes(count * BL)
    with served(tmp_path, ReadOnly()) as (unit, h):
        assert h.is_read_only()
        assert h.pread(512, 0) == bytes(512)
    with spd.Unit(ReadOnly(), size=1 << 20) as unit:
        with pytest.raises(OSError) as e:
            unit.pwrite(b"x" * 512, 0)
        assert e.value.errno == errno.EROFS


# -------------------------------------------------------------------------
# Errors and exceptions


class Faulty(Ram):
    """Block 8 fails reads with what self.fault says."""

    def __init__(self):
        super().__init__(1 << 20)
        self.fault = None

    def read(self, lba, count):
        if lba <= 8 < lba + count and self.fault:
            raise self.fault
        return super().read(lba, count)

    def write(self, lba, buf, fua):
        if lba <= 8 < lba + len(buf) // BL and self.fault:
            raise self.fault
        super().write(lba, buf, fua)


def test_oserror_maps_through_the_core(tmp_path):
    dev = Faulty()
    with served(tmp_path, dev) as (unit, h):
        dev.fault = OSError(errno.EIO, "bad block")
        assert nbd_errno(lambda: h.pread(512, 8 * BL)) == errno.EIO
        assert sense_of(unit, read10(8, 1))[1:4] == (0x3, 0x11, 0x00)
        dev.fault = OSError(errno.ENOSPC, "full")
        assert nbd_errno(lambda: h.pwrite(bytes(512), 8 * BL)) == errno.ENOSPC
        dev.fault = PermissionError(errno.EROFS, "read-only now")
        assert nbd_errno(lambda: h.pwrite(bytes(512), 8 * BL)) == errno.EPERM
        # The other blocks, and then block 8 again, work throughout.
        assert h.pread(512, 0) == bytes(512)
        dev.fault = None
        assert h.pread(512, 8 * BL) == bytes(512)


def test_sense_error_is_exact(tmp_path):
    dev = Faulty()
    dev.fault = spd.SenseError(0x3, 0x11, 0x04, information=8)
    with spd.Unit(dev, size=1 << 20) as unit:
        assert sense_of(unit, read10(6, 4)) == (2, 0x3, 0x11, 0x04, 8)
        dev.fault = spd.SenseError(0x4, 0x44, 0x00)
        assert sense_of(unit, read10(8, 1))[:4] == (2, 0x4, 0x44, 0x00)
        assert sense_of(unit, read10(0, 1))[0] == 0


def test_other_exceptions_are_logged_and_medium_errors(tmp_path, caplog):
    dev = Faulty()
    dev.fault = ZeroDivisionError("device bug")
    with served(tmp_path, dev) as (unit, h):
        with caplog.at_level(logging.ERROR, logger="spd"):
            assert nbd_errno(lambda: h.pread(512, 8 * BL)) == errno.EIO
            assert sense_of(unit, read10(8, 1))[1:4] == (0x3, 0x11, 0x00)
        rec = [r for r in caplog.records if r.name == "spd"]
        assert rec and "read(lba=8, count=1)" in rec[0].getMessage()
        assert rec[0].exc_info[0] is ZeroDivisionError
        assert "Traceback" in caplog.text and "device bug" in caplog.text
        # The device keeps serving.
        assert h.pread(4096, 0) == bytes(4096)


def test_bad_answers_are_medium_errors(tmp_path, caplog):
    class Short(Ram):
        def read(self, lba, count):
            return b"short"
    with served(tmp_path, Short(1 << 20)) as (unit, h):
        with caplog.at_level(logging.ERROR, logger="spd"):
            assert nbd_errno(lambda: h.pread(512, 0)) == errno.EIO
        assert "5 bytes where 512" in caplog.text


# -------------------------------------------------------------------------
# Buffers and threads


def test_buffers_are_views_of_the_core(tmp_path):
    seen = {}

    class Views(Ram):
        def readinto(self, lba, buf):
            seen["read"] = buf
            assert isinstance(buf, memoryview) and not buf.readonly
            buf[:] = self.data[lba * BL:lba * BL + len(buf)]

        def write(self, lba, buf, fua):
            seen["write"] = buf
            assert isinstance(buf, memoryview) and buf.readonly
            super().write(lba, buf, fua)

    Views.read = None           # readinto only
    with served(tmp_path, Views(1 << 20)) as (unit, h):
        h.pwrite(b"\x5a" * 8192, 4096)
        assert h.pread(8192, 4096) == b"\x5a" * 8192
    # A view kept past the call is released, never a dangling pointer.
    for view in seen.values():
        with pytest.raises(ValueError):
            view[0]


def test_thread_safe_device_runs_in_parallel(tmp_path):
    class Slow(Ram):
        thread_safe = True

        def __init__(self):
            super().__init__(1 << 20)
            self.lock = threading.Lock()
            self.now = self.most = 0

        def read(self, lba, count):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.05)            # releases the GIL
            with self.lock:
                self.now -= 1
            return super().read(lba, count)

    dev = Slow()
    with spd.Unit(dev, size=1 << 20, threads=4) as unit:
        threads = [threading.Thread(target=unit.pread, args=(512, i * 512))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert dev.most > 1


# -------------------------------------------------------------------------
# Asynchronous completion


class Later(Ram):
    """An asynchronous device: each request completed by a timer thread."""
    asynchronous = True

    def __init__(self, delay=0.01):
        super().__init__(1 << 20)
        self.delay = delay
        self.requests = []

    def _later(self, fn):
        threading.Timer(self.delay, fn).start()

    def read(self, req, lba, count):
        self.requests.append(req)
        if lba == 8:
            self._later(lambda: req.complete(OSError(errno.ENOSPC, "x")))
        elif lba == 9:
            self._later(lambda: req.complete(spd.SenseError(3, 0x11, 1)))
        elif lba == 10:                 # the data into req.buf
            def fill():
                req.buf[:] = b"\x01" * len(req.buf)
                req.complete()
            self._later(fill)
        else:
            data = bytes(self.data[lba * BL:(lba + count) * BL])
            self._later(lambda: req.complete(data))

    def write(self, req, lba, buf, fua):
        self.data[lba * BL:lba * BL + len(buf)] = buf    # copied now
        self._later(req.complete)

    def flush(self, req):
        req.complete()                  # at once, inside the call


def test_async_completion(tmp_path):
    dev = Later()
    with served(tmp_path, dev) as (unit, h):
        h.pwrite(b"\x33" * 4096, 0)
        assert h.pread(4096, 0) == b"\x33" * 4096
        h.flush()
        assert nbd_errno(lambda: h.pread(512, 8 * BL)) == errno.ENOSPC
        assert sense_of(unit, read10(9, 1))[1:4] == (3, 0x11, 1)
        assert h.pread(512, 10 * BL) == b"\x01" * 512
        # Many in flight at once on one connection.
        bufs = [nbd.Buffer(4096) for _ in range(32)]
        cookies = [h.aio_pread(b, 65536 + i * 4096)
                   for i, b in enumerate(bufs)]
        while h.aio_in_flight():
            h.poll(-1)
        assert all(h.aio_command_completed(c) for c in cookies)
        assert all(b.to_bytearray() == bytes(4096) for b in bufs)
    req = dev.requests[0]
    assert req.done and req.buf is None
    with pytest.raises(RuntimeError, match="already complete"):
        req.complete()


def test_async_request_dropped_or_failing(tmp_path, caplog):
    class Careless(Ram):
        asynchronous = True

        def read(self, req, lba, count):
            if lba == 1:
                raise KeyError("before completing")
            # lba 0: forgets the request

        def write(self, req, lba, buf, fua):
            req.complete()
            raise KeyError("after completing")

        def flush(self, req):
            req.complete()

    with served(tmp_path, Careless(1 << 20)) as (unit, h):
        with caplog.at_level(logging.ERROR, logger="spd"):
            assert nbd_errno(lambda: h.pread(512, 0)) == errno.EIO
            assert nbd_errno(lambda: h.pread(512, 512)) == errno.EIO
            h.pwrite(bytes(512), 0)     # completed: the error only logged
    assert "dropped without complete()" in caplog.text
    assert "before completing" in caplog.text
    assert "after completing" in caplog.text


def test_asyncio_device(tmp_path):
    class AsyncRam(Ram):
        async def read(self, lba, count):
            await asyncio.sleep(0.001)
            return super().read(lba, count)

        async def write(self, lba, buf, fua):
            data = bytes(buf)           # the view is the core's until return
            await asyncio.sleep(0.001)
            self.data[lba * BL:lba * BL + len(data)] = data

        async def flush(self):
            if not self.flushed:
                self.flushed = True
                raise OSError(errno.EIO, "flush failed")

    async def scenario():
        loop = asyncio.get_running_loop()
        dev = AsyncRam(1 << 20)
        dev.flushed = False
        unit = spd.Unit(dev, size=1 << 20)
        export = unit.serve_nbd("nbd+unix:///?socket=%s" % (tmp_path / "a"))

        def client():
            h = nbd.NBD()
            h.connect_uri(export.uris[0])
            h.pwrite(b"\x44" * 8192, 512)
            data = h.pread(8192, 512)
            err = nbd_errno(h.flush)
            h.shutdown()
            return data, err
        data, err = await loop.run_in_executor(None, client)
        assert data == b"\x44" * 8192 and err == errno.EIO
        await unit.aclose()
        assert unit.closed
    asyncio.run(scenario())


# -------------------------------------------------------------------------
# Shutdown with requests in flight


@pytest.mark.parametrize("device", ["sync", "async"])
def test_close_answers_requests_in_flight(tmp_path, device):
    """Requests the unit has in hand when close() is called are answered
    (a synchronous device on the connection's thread has one at a time;
    the server may end the connection before reading the others, and
    those fail on the client: never a wrong answer, a crash or a hang)."""
    class SlowSync(Ram):
        def read(self, lba, count):
            time.sleep(0.02)
            return super().read(lba, count)

    dev = SlowSync(1 << 20) if device == "sync" else Later(delay=0.3)
    dev.data[:] = b"\x77" * len(dev.data)
    unit = spd.Unit(dev, size=1 << 20)
    export = unit.serve_nbd("nbd+unix:///?socket=%s" % (tmp_path / "c"))
    h = nbd.NBD()
    h.connect_uri(export.uris[0])
    bufs = [nbd.Buffer(4096) for _ in range(16)]
    cookies = [h.aio_pread(b, 65536 + i * 4096) for i, b in enumerate(bufs)]

    def poll():     # the client reads its replies while the server stops
        with contextlib.suppress(nbd.Error):
            while h.aio_in_flight():
                h.poll(1000)
    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.1)                     # the server has them in hand
    start = time.monotonic()
    unit.close()
    poller.join(30)
    assert not poller.is_alive(), "the client still waits for replies"
    assert time.monotonic() - start < 20
    answered = 0
    for c, b in zip(cookies, bufs):
        with contextlib.suppress(nbd.Error):
            if h.aio_command_completed(c):
                assert b.to_bytearray() == b"\x77" * 4096
                answered += 1
    assert answered == 16 if device == "async" else answered >= 1
    assert export.closed and unit.closed
    with pytest.raises(ValueError, match="closed"):
        unit.serve_nbd("nbd+unix:///?socket=%s" % (tmp_path / "d"))


# -------------------------------------------------------------------------
# Other clients and exports


def test_extents_for_block_status(tmp_path):
    need("nbdinfo")

    class Holes(Ram):
        def extents(self, lba, count):      # mapped: the first 64 KiB only
            if lba < 128:
                return min(count, 128 - lba), True
            return count, False

    with spd.Unit(Holes(1 << 20), size=1 << 20) as unit:
        uri = unit.serve_nbd("nbd+unix:///?socket=%s" %
                             (tmp_path / "e")).uris[0]
        out = run("nbdinfo", "--map", uri).stdout
    rows = [line.split()[:3] for line in out.splitlines()]
    assert rows[0] == ["0", "65536", "0"], out
    assert rows[1][:2] == ["65536", "983040"] and rows[1][2] == "3", out


def test_iscsi_export(tmp_path):
    need("iscsi-readcapacity16", "iscsi-inq")
    with spd.Unit(Ram(4 << 20), size=4 << 20, block_length=4096) as unit:
        export = unit.serve_iscsi()
        url = export.uris[0]
        assert url.startswith("iscsi://127.0.0.1:")
        out = run("iscsi-readcapacity16", url).stdout
        assert "LOGICAL BLOCK LENGTH IN BYTES:4096" in out, out
        assert "Total size:%d" % (4 << 20) in out, out
