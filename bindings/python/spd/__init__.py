"""Spd for Python: a disk written in Python, served by Spd's C core.

A device is any object with these methods (docs/python.md):

    read(lba, count) -> bytes-like     count blocks from block lba
    readinto(lba, buf)                 or: fill buf (a memoryview), no copy
    write(lba, buf, fua)               buf: a memoryview, valid in the call
    flush()                            optional
    unmap(ranges)                      optional; ranges: [(lba, count)]
    extents(lba, count) -> (n, mapped) optional; n from 1 to count

and, optionally, the class attributes thread_safe (called from several
threads at once), native_fua (write honours fua itself), asynchronous
(methods get a Request first and answer with req.complete()) or methods
that are coroutines (run on an asyncio loop).

Errors: raise OSError(errno) (EIO is a MEDIUM ERROR, EROFS write
protected, ENOSPC space allocation failed, ...), SenseError(key, asc,
ascq) for an exact sense; any other exception is logged to the "spd"
logger with its traceback, answered as a MEDIUM ERROR, and the device
keeps serving.

    with spd.Unit(RamDisk(64 << 20), size=64 << 20) as unit:
        unit.serve_nbd("nbd+unix:///?socket=/tmp/ram.sock")
        ...
    spd.main(RamDisk)      # or: the command line of the C devices
"""
import asyncio
import atexit
import collections
import inspect
import logging
import os
import sys
import threading
import traceback
import uuid as _uuid

from . import _spd
from ._spd import Export, Request

__all__ = ["Unit", "Params", "Export", "Request", "SenseError", "UsageError",
           "Option", "main", "version"]

log = logging.getLogger("spd")
version = _spd.version


class SenseError(Exception):
    """Fail a request with exactly this sense: key, asc, ascq (numbers, as
    in SPC), and optionally the information field (usually the LBA in
    error)."""

    def __init__(self, key, asc, ascq, information=None):
        super().__init__(key, asc, ascq, information)
        self.key, self.asc, self.ascq = key, asc, ascq
        self.information = information

    def __str__(self):
        return "sense key %X, ASC %02X, ASCQ %02X" % (self.key, self.asc,
                                                       self.ascq)


class UsageError(Exception):
    """Raised by a device's factory under spd.main() for a bad command
    line: one line is printed and the program exits 2."""


def _log(device, op, lba, count, exc, outcome):
    log.error("%s(lba=%d, count=%d) of %r raised; %s", op, lba, count,
              device, outcome, exc_info=exc)


_spd._init(SenseError, _log)
# Units still open are closed before the interpreter goes: their exports
# stop while the threads that call the device can still take the GIL.
atexit.register(_spd.close_all)


class Params:
    """A unit's parameters. size (bytes) or block_count gives the size;
    cache, unmap and unmap_reads_zero left at None follow the device
    (whether it has flush() and unmap(), and its unmap_reads_zero
    attribute, default True). spd.main() hands one, filled from the
    command line, to the device's factory, which may change it."""

    def __init__(self, size=None, block_count=None, block_length=512,
                 uuid=None, product_id="", product_revision="",
                 write_protected=False, cache=None, unmap=None,
                 unmap_reads_zero=None, max_transfer_length=0,
                 physical_block_length=0):
        if size is not None and block_count is not None:
            raise ValueError("give size or block_count, not both")
        self.block_length = block_length
        self.block_count = block_count
        if size is not None:
            self.size = size
        self.uuid = _uuid.UUID(str(uuid)) if uuid is not None else _uuid.uuid4()
        self.product_id = product_id
        self.product_revision = product_revision
        self.write_protected = write_protected
        self.cache = cache
        self.unmap = unmap
        self.unmap_reads_zero = unmap_reads_zero
        self.max_transfer_length = max_transfer_length
        self.physical_block_length = physical_block_length
        self.given = frozenset()

    @property
    def size(self):
        """Bytes: block_count * block_length."""
        return (self.block_count or 0) * self.block_length

    @size.setter
    def size(self, size):
        if size % self.block_length:
            raise ValueError("size %d is not a multiple of the block length "
                             "%d" % (size, self.block_length))
        self.block_count = size // self.block_length

    def __repr__(self):
        return "spd.Params(%s)" % ", ".join(
            "%s=%r" % kv for kv in sorted(vars(self).items()))

    def _for(self, device):
        """The C unit's keyword arguments, the device's defaults applied."""
        if not self.block_count:
            raise ValueError("give the size: size= or block_count=")
        writes = callable(getattr(device, "write", None))
        unmap = callable(getattr(device, "unmap", None))
        lbprz = getattr(device, "unmap_reads_zero", True)
        pick = lambda v, default: default if v is None else bool(v)
        return dict(
            block_count=self.block_count, block_length=self.block_length,
            uuid=self.uuid.bytes, product_id=self.product_id,
            product_revision=self.product_revision,
            write_protected=bool(self.write_protected) or not writes,
            cache=pick(self.cache, callable(getattr(device, "flush", None))),
            unmap=pick(self.unmap, unmap) and unmap,
            unmap_reads_zero=pick(self.unmap_reads_zero, lbprz) and unmap,
            max_transfer_length=self.max_transfer_length,
            physical_block_length=self.physical_block_length)


class Unit(_spd.Unit):
    """A storage unit served by device: Unit(device, params=None,
    threads=0, loop=None, **params) with params a Params or its fields as
    keyword arguments (size=, block_length=, ...).

    threads: dispatcher threads that call the device (0: the exports'
    own threads call it; give some to a device that blocks, such as one
    on files or sockets, marked thread_safe). loop: the asyncio loop of a
    device whose methods are coroutines (default: the running one).

    Serve it with serve_nbd(), serve_iscsi(), serve_fuse(), serve_ublk();
    close() (or the end of a with block) stops the exports after the
    requests in flight are answered, flushes, and frees the unit."""

    def __init__(self, device, params=None, *, threads=0, loop=None, **kw):
        if params is None:
            params = Params(**kw)
        elif kw:
            raise TypeError("give params or keyword arguments, not both")
        if _is_asyncio(device):
            device = _AsyncioDevice(device, loop or _running_loop())
        super().__init__(device, threads=threads, **params._for(device))

    def serve_iscsi(self, address="iscsi://127.0.0.1:0", target=None,
                    chap_file=None):
        """The unit as LUN 0 of an iSCSI target (default name:
        iqn.2026-11.org.spd:python.UUID8); Export.uris has
        iscsi://HOST:PORT/IQN/0."""
        if target is None:
            target = "iqn.2026-11.org.spd:python." + self.uuid[:8]
        return super().serve_iscsi(address, target, chap_file)

    async def aclose(self):
        """close() for asyncio code: the loop keeps running (and serving
        the device's coroutines) while the exports drain."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError("a device with coroutine methods needs an asyncio "
                           "loop: create the Unit in a coroutine, or pass "
                           "loop=") from None


_OPS = ("read", "readinto", "write", "flush", "unmap")


def _is_asyncio(device):
    return any(inspect.iscoroutinefunction(getattr(device, name, None))
               for name in _OPS + ("extents",))


class _AsyncioDevice:
    """A device whose methods are coroutines, as an asynchronous device:
    each request becomes a task on the loop, completed when it ends."""

    asynchronous = True
    thread_safe = True          # its methods only hand work to the loop

    def __init__(self, device, loop):
        self.device, self.loop = device, loop
        self.native_fua = getattr(device, "native_fua", False)
        self.unmap_reads_zero = getattr(device, "unmap_reads_zero", True)
        for name in _OPS:
            method = getattr(device, name, None)
            if callable(method):
                setattr(self, name, self._request(name, method))
        extents = getattr(device, "extents", None)
        if callable(extents):
            self.extents = self._sync(extents)

    def _request(self, name, method):
        def call(req, *args):
            if name == "readinto":
                args = (args[0], req.buf)
            result = method(*args)
            if inspect.isawaitable(result):
                future = asyncio.run_coroutine_threadsafe(result, self.loop)
                future.add_done_callback(lambda f: self._done(name, req, f))
            else:
                req.complete(result if name == "read" else None)
        return call

    @staticmethod
    def _done(name, req, future):
        try:
            result = future.result()
        except BaseException as exc:    # cancelled too: the request fails
            req.complete(exc)
            return
        req.complete(result if name == "read" else None)

    def _sync(self, method):
        def call(*args):
            result = method(*args)
            if inspect.isawaitable(result):
                return asyncio.run_coroutine_threadsafe(result,
                                                        self.loop).result()
            return result
        return call

    def __repr__(self):
        return repr(self.device)


Option = collections.namedtuple("Option", "name arg help short",
                                defaults=(None, "", None))
Option.__doc__ = """A device's own command-line option for spd.main():
name (long, without dashes), arg (its argument's name in --help, or None
for a flag), help, short (a letter, or None)."""


def main(factory, *, name=None, summary=None, version=None,
         default_size=64 << 20, size_help=None, threads=0, options=(),
         argv=None):
    """Run a device program with the command line of the C devices
    (spd_main(3): --size, -r, --nbd, --iscsi, --fuse, --ublk, --check,
    signals, pid file, ...) and exit with its status.

    factory(params, **options) makes the device once the command line is
    read: params is a Params (size, block_length, uuid, ... and given,
    the set of "size", "block_length", "uuid" the command line set), which
    it may change (a file-backed disk sets the size from its file); the
    device's own options (Option tuples) come as keyword arguments, dashes
    turned into underscores, True for a flag. Raise UsageError for a bad
    option; an OSError or ValueError is printed as one line. The device's
    close(), if any, is called at the end."""
    argv = list(sys.argv if argv is None else argv)
    options = [Option(*o) if not isinstance(o, Option) else o
               for o in options]
    if name is None:
        name = os.path.splitext(os.path.basename(argv[0] or "spd"))[0]
    opts, state = {}, {}

    def take(index, arg):
        opts[options[index].name.replace("-", "_")] = True if arg is None \
            else arg

    def open_(c):
        bits = c.pop("given")
        p = Params(block_count=c.pop("block_count") or None,
                   uuid=_uuid.UUID(bytes=c.pop("uuid")), **c)
        p.given = frozenset(n for n, bit in (("size", 1), ("block_length", 2),
                                             ("uuid", 4)) if bits & bit)
        try:
            device = factory(p, **opts)
            if _is_asyncio(device):
                device = _AsyncioDevice(device, _loop_thread())
            fields = p._for(device)
        except UsageError as exc:
            print("%s: %s" % (name, exc), file=sys.stderr)
            return 2
        except (OSError, ValueError) as exc:
            print("%s: %s" % (name, exc), file=sys.stderr)
            return 1
        except Exception:
            traceback.print_exc()
            return 1
        state["device"] = device
        fields["given"] = bits
        return device, fields

    def close(served):
        device = state.get("device")
        device = getattr(device, "device", device)   # under _AsyncioDevice
        closer = getattr(device, "close", None)
        if callable(closer):
            closer()

    status = _spd.main(argv=argv, name=name, summary=summary,
                       version=version, default_size=default_size,
                       size_help=size_help, threads=threads,
                       options=[(o.name, o.short, o.arg, o.help)
                                for o in options],
                       take=take, open=open_, close=close)
    sys.exit(status)


def _loop_thread():
    """An asyncio loop on a thread of its own, for spd.main()."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="spd-asyncio",
                     daemon=True).start()
    return loop
