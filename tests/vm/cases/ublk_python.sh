#!/bin/sh
# A disk written in Python on /dev/ublkb0: the binding's RAM disk example
# through spd.main's --ublk (ext4 round trip, fio verify), then a device
# served from Python code with Unit.serve_ublk(): what dd writes to the
# kernel's disk is what the device's write() got, and close() removes it.
. "$(dirname "$0")/../ublk.sh"
need mkfs.ext4 e2fsck fio
[ -x /usr/bin/python3 ] || skip "no /usr/bin/python3"
SRC=$(cd "$(dirname "$0")/../../.." && pwd)
PYTHONPATH=$BUILD/bindings/python
export PYTHONPATH
/usr/bin/python3 -c 'import spd' 2>/dev/null || skip "the Python binding is not built"

ublk_serve /usr/bin/python3 "$SRC/bindings/python/examples/ramdisk.py" --size 64M
ext4_roundtrip "$UBLK_DEV"
fio_verify "$UBLK_DEV"
ublk_stop

head -c 1048576 /dev/urandom >"$WORK/data"
/usr/bin/python3 - "$WORK" <<'PY' || fail "Unit.serve_ublk (see above)"
import hashlib, os, subprocess, sys, time
import spd

work = sys.argv[1]
class Disk:
    def __init__(self):
        self.data = bytearray(16 << 20)
    def readinto(self, lba, buf):
        buf[:] = self.data[lba * 512:lba * 512 + len(buf)]
    def write(self, lba, buf, fua):
        self.data[lba * 512:lba * 512 + len(buf)] = buf

d = Disk()
with spd.Unit(d, size=16 << 20) as unit:
    e = unit.serve_ublk(id=0)
    dev = "/dev/ublkb0"
    for _ in range(300):
        if os.path.exists(dev):
            break
        time.sleep(0.1)
    subprocess.run(["dd", "if=%s/data" % work, "of=" + dev, "bs=64k", "seek=16",
                    "oflag=direct", "status=none"], check=True)
    want = open(work + "/data", "rb").read()
    assert bytes(d.data[1 << 20:2 << 20]) == want, "the device did not get the bytes dd wrote"
    back = subprocess.run(["dd", "if=" + dev, "bs=64k", "skip=16", "count=16",
                           "iflag=direct", "status=none"], check=True,
                          capture_output=True).stdout
    assert back == want, "dd read back other bytes"
    e.close()
for _ in range(100):
    if not os.path.exists("/dev/ublkb0"):
        break
    time.sleep(0.1)
assert not os.path.exists("/dev/ublkb0"), "/dev/ublkb0 stayed after close()"
print("ok - Unit.serve_ublk(): dd's 1 MiB reached write() and read back; closed, the disk is gone")
PY
