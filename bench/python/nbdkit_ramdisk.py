# The RAM disk of bindings/python/examples/ramdisk.py as an nbdkit Python
# plugin, written the same way: a memoryview over a bytearray, reads
# filling the server's buffer, writes slicing into the disk.
#   nbdkit python bench/python/nbdkit_ramdisk.py size=1G
import nbdkit

API_VERSION = 2
disk = None


def config(key, value):
    global disk
    if key == "size":
        disk = memoryview(bytearray(nbdkit.parse_size(value)))


def thread_model():
    return nbdkit.THREAD_MODEL_PARALLEL


def open(readonly):
    return 1


def get_size(h):
    return len(disk)


def pread(h, buf, offset, flags):
    buf[:] = disk[offset:offset + len(buf)]


def pwrite(h, buf, offset, flags):
    disk[offset:offset + len(buf)] = buf


def trim(h, count, offset, flags):
    disk[offset:offset + count] = bytes(count)
