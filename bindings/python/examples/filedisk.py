#!/usr/bin/python3
"""A disk in a file, in Python: ./filedisk.py --file disk.img --size 1G --nbd URI

Reads go straight from the file into Spd's buffer (os.preadv into the
memoryview) and writes straight from it; the calls release the GIL, so
the device is thread_safe and runs on several dispatcher threads. Without
--size the file's own size is the disk's."""
import os

import spd


class FileDisk:
    thread_safe = True      # pread/pwrite at explicit offsets
    native_fua = True       # a FUA write is followed by fdatasync here

    def __init__(self, params, file=None):
        if not file:
            raise spd.UsageError("--file PATH is required")
        self.fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if "size" in params.given:
            os.ftruncate(self.fd, params.size)
        else:
            params.size = os.fstat(self.fd).st_size
        self.bl = params.block_length
        params.unmap = False            # files keep their blocks here

    def readinto(self, lba, buf):
        done = os.preadv(self.fd, [buf], lba * self.bl)
        if done != len(buf):
            raise OSError(5, "short read")      # EIO: MEDIUM ERROR

    def write(self, lba, buf, fua):
        done = os.pwrite(self.fd, buf, lba * self.bl)
        if done != len(buf):
            raise OSError(28, "short write")    # ENOSPC
        if fua:
            os.fdatasync(self.fd)

    def flush(self):
        os.fdatasync(self.fd)

    def close(self):
        os.close(self.fd)


if __name__ == "__main__":
    spd.main(FileDisk, summary="a disk in a file, written in Python",
             default_size=0, size_help="the file's size", threads=4,
             options=[spd.Option("file", "PATH", "the image file (created "
                                 "when missing)", "f")])
