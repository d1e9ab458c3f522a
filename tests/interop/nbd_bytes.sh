#!/bin/sh
# A client that does not ask for block sizes addresses bytes: libnbd with
# its block size request turned off sends reads, writes, zeroing and
# trims and block status queries at any offset and length to a unit of
# 4096-byte blocks, several
# in flight within one block, and every byte reads back as written. A
# client that asked for block sizes keeps to them: the same requests fail
# EINVAL. Ranges past the end fail as the protocol says, changing nothing.
. "$(dirname "$0")/../lib.sh"
PATH=/usr/bin:$PATH   # Debian's python3, which has libnbd's module
need python3
python3 -c 'import nbd' 2>/dev/null || skip "python3-libnbd is not installed"

start_device "$RAMDISK" --size 8M --block-length 4096 \
    --nbd "nbd+unix:///?socket=$WORK/sock"
serving_uri "$WORK/server.log" nbd >/dev/null
URI="nbd+unix:///?socket=$WORK/sock"

python3 - "$URI" <<'PY' || fail "byte-addressed I/O (see above)"
import errno, random, sys
import nbd

uri = sys.argv[1]
rng = random.Random(12)

def connect(ask):
    h = nbd.NBD()
    h.set_request_block_size(ask)
    h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
    # Let libnbd send what the server is to judge.
    h.set_strict_mode(h.get_strict_mode() & ~(nbd.STRICT_ALIGN | nbd.STRICT_BOUNDS))
    h.connect_uri(uri)
    return h

def read_all(h, size):
    return bytearray().join(h.pread(1 << 20, o) for o in range(0, size, 1 << 20))

def expect_errno(what, want, fn, *args):
    try:
        fn(*args)
    except nbd.Error as e:
        assert e.errnum == want, f"{what}: errno {e.errnum}, want {want}"
        return
    raise AssertionError(f"{what}: succeeded, want errno {want}")

h = connect(False)
size = h.get_size()
assert size == 8 << 20
assert h.get_block_size(nbd.SIZE_MINIMUM) == 4096
shadow = bytearray(read_all(h, size))

# Reads, writes and zeroing at random offsets and lengths, some FUA.
for i in range(300):
    off = rng.randrange(size - 1)
    n = min(rng.randrange(1, 20000), size - off)
    kind = rng.randrange(4)
    if kind == 0:
        shadow[off:off + n] = bytes(n)
        h.zero(n, off)
    else:
        data = rng.randbytes(n)
        shadow[off:off + n] = data
        h.pwrite(data, off, nbd.CMD_FLAG_FUA if kind == 1 else 0)
    roff = max(off - rng.randrange(5000), 0)
    rn = min(n + rng.randrange(9000), size - roff)
    assert h.pread(rn, roff) == shadow[roff:roff + rn], f"read back at {roff}+{rn}"
assert read_all(h, size) == shadow, "the whole disk after random writes"
print("ok - 300 unaligned writes and zeroings, every byte read back")

# Many writes in flight into the same blocks: 512-byte pieces of eight
# blocks, issued in shuffled order before any completes.
pieces = [(b * 4096 + k * 512, rng.randbytes(512)) for b in range(8, 16) for k in range(8)]
rng.shuffle(pieces)
cookies = [h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(d)), off) for off, d in pieces]
while h.aio_in_flight():
    h.poll(-1)
for c in cookies:
    assert h.aio_command_completed(c)   # raises if the write failed
for off, d in pieces:
    shadow[off:off + 512] = d
assert h.pread(8 * 4096, 8 * 4096) == shadow[8 * 4096:16 * 4096], "pieces in flight together"
print(f"ok - {len(pieces)} 512-byte writes in flight into 8 blocks at once")

# Trim discards whole blocks only: the partial edges keep their bytes.
toff, tlen = 20 * 4096 + 100, 3 * 4096 + 1000     # whole blocks 21 and 22
h.trim(tlen, toff)
inner = slice(21 * 4096, 23 * 4096)
got = read_all(h, size)
assert got[:inner.start] == shadow[:inner.start], "bytes before the trimmed blocks"
assert got[inner.stop:] == shadow[inner.stop:], "bytes after the trimmed blocks"
shadow[inner] = got[inner]
h.trim(100, 5 * 4096 + 7)      # no whole block: nothing changes
assert read_all(h, size) == shadow, "the disk after trims"
print("ok - unaligned trims keep the bytes outside whole blocks")

# Block status from any byte: the first extent starts at the offset asked,
# the last ends with the block that holds the last byte asked.
def extents(h, n, off):
    got = []
    def cb(meta, offset, entries, err):
        if meta == nbd.CONTEXT_BASE_ALLOCATION:
            got.extend(zip(entries[0::2], entries[1::2]))
        return 0
    h.block_status(n, off, cb)
    return got
hole = nbd.STATE_HOLE | nbd.STATE_ZERO
M = 1 << 20           # data just before 1 MiB, 256 KiB unmapped, data after
for off, n in ((M - 8192, 8192), (M + 256 * 1024, 4096)):
    shadow[off:off + n] = data = rng.randbytes(n)
    h.pwrite(data, off)
h.trim(256 * 1024, M)
shadow[M:M + 256 * 1024] = bytes(256 * 1024)
e = extents(h, 100, M + 50)
assert e == [(4096 - 50, hole)], f"status inside the hole: {e}"
e = extents(h, 5000, M - 4000)
assert e == [(4000, 0), (4096, hole)], f"status across data and hole: {e}"
e = extents(h, 10, M + 256 * 1024 + 7)
assert e == [(4096 - 7, 0)], f"status inside data: {e}"
print("ok - block status at byte offsets starts where asked")

# Past the end: refused, nothing changed.
expect_errno("write across the end", errno.ENOSPC, h.pwrite, bytes(200), size - 100)
expect_errno("zero across the end", errno.ENOSPC, h.zero, 200, size - 100)
expect_errno("read across the end", errno.EINVAL, h.pread, 200, size - 100)
expect_errno("trim across the end", errno.EINVAL, h.trim, 200, size - 100)
assert h.pread(4096, size - 4096) == shadow[size - 4096:], "the last block"
print("ok - requests across the end refused, nothing changed")

# A client that asked for block sizes keeps to them.
s = connect(True)
expect_errno("unaligned read", errno.EINVAL, s.pread, 512, 512)
expect_errno("unaligned write", errno.EINVAL, s.pwrite, bytes(512), 512)
expect_errno("unaligned block status", errno.EINVAL, extents, s, 512, 512)
assert s.pread(4096, 4096) == shadow[4096:8192]
s.shutdown()
assert read_all(h, size) == shadow, "the disk after the strict client"
print("ok - a client that asked for block sizes gets EINVAL off them")
h.shutdown()
PY
stop_device "$SERVER_PID"
ok "server stopped cleanly"
