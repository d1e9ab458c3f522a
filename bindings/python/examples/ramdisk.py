#!/usr/bin/python3
"""A RAM disk in Python: ./ramdisk.py --size 64M --nbd nbd://127.0.0.1:0/"""
import spd

class RamDisk:
    def __init__(self, params):
        self.bl = params.block_length
        self.disk = memoryview(bytearray(params.size))

    def readinto(self, lba, buf):
        buf[:] = self.disk[lba * self.bl:lba * self.bl + len(buf)]

    def write(self, lba, buf, fua):
        self.disk[lba * self.bl:lba * self.bl + len(buf)] = buf

    def unmap(self, ranges):
        for lba, count in ranges:
            self.disk[lba * self.bl:(lba + count) * self.bl] = bytes(count * self.bl)

if __name__ == "__main__":
    spd.main(RamDisk, summary="a RAM disk written in Python")
