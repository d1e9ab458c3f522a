"""The example devices (examples/ramdisk.py, filedisk.py, sqlitedisk.py)
run as programs through spd.main(), with the C devices' command line, and
driven by real clients: qemu-img round trips and nbdinfo over NBD, fio
verify through fio's NBD engine, ext4 through FUSE and a loop device."""
import os
import pathlib
import subprocess
import sys
import time

import pytest

from conftest import EXAMPLES, need, need_root, python_env, run

SIZE = 32 << 20
EXAMPLE_ARGS = {
    "ramdisk.py": lambda work: [],
    "filedisk.py": lambda work: ["--file", work / "disk.img"],
    "sqlitedisk.py": lambda work: ["--db", work / "disk.sqlite"],
}


@pytest.fixture(params=sorted(EXAMPLE_ARGS))
def example(request, tmp_path):
    """(script, its own arguments)."""
    return request.param, EXAMPLE_ARGS[request.param](tmp_path)


def nbd_start(program, tmp_path, example, *extra):
    script, args = example
    sock = tmp_path / "nbd.sock"
    p = program(script, "--size", SIZE, *args,
                "--nbd", "nbd+unix:///?socket=%s" % sock, *extra)
    return p, p.uri("nbd+unix://")


def test_qemu_img_round_trip(program, tmp_path, example):
    need("qemu-img", "nbdinfo")
    p, uri = nbd_start(program, tmp_path, example)
    info = run("nbdinfo", "--json", uri).stdout
    assert '"export-size": %d' % SIZE in info, info
    data = tmp_path / "in.img"
    data.write_bytes(os.urandom(SIZE))
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", data, uri)
    out = tmp_path / "out.img"
    run("qemu-img", "convert", "-f", "raw", "-O", "raw", uri, out)
    assert out.read_bytes() == data.read_bytes()
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", data, uri)
    p.stop()


def test_fio_verify(program, tmp_path, example):
    need("fio")
    if "nbd" not in run("fio", "--enghelp").stdout.split():
        pytest.skip("fio has no nbd engine")
    p, uri = nbd_start(program, tmp_path, example)
    run("fio", "--name=verify", "--ioengine=nbd", "--uri=" + uri,
        "--rw=randwrite", "--bs=4k", "--iodepth=16", "--size=8M",
        "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0",
        "--output=" + str(tmp_path / "fio.log"))
    p.stop()


def test_ext4_through_fuse_and_loop(program, tmp_path, example):
    need("losetup", "mkfs.ext4", "e2fsck", "mount", "umount")
    need_root("losetup and mount")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse")
    script, args = example
    disk, mnt = tmp_path / "fuse-disk", tmp_path / "mnt"
    mnt.mkdir()
    p = program(script, "--size", SIZE, "--block-length", 4096, *args,
                "--fuse", disk)
    assert disk.stat().st_size == SIZE
    loop = run("losetup", "-f", "--show", disk).stdout.strip()
    try:
        run("mkfs.ext4", "-q", "-F", loop)
        run("mount", loop, mnt)
        files = {mnt / ("f%d" % i): os.urandom(37000 * i + 1)
                 for i in range(20)}
        for f, data in files.items():
            f.write_bytes(data)
        run("umount", mnt)
        run("losetup", "-d", loop)
        loop = run("losetup", "-f", "--show", disk).stdout.strip()
        run("e2fsck", "-fn", loop)
        run("mount", "-o", "ro", loop, mnt)
        for f, data in files.items():
            assert f.read_bytes() == data
        run("umount", mnt)
    finally:
        run("umount", mnt, check=False)
        run("losetup", "-d", loop, check=False)
    p.stop()
    assert not disk.exists()
    if script == "filedisk.py":         # the file system is in the file
        run("e2fsck", "-fn", tmp_path / "disk.img")


def test_sqlite_keeps_blocks_and_holes(program, tmp_path):
    need("nbdinfo", "qemu-io")
    example = ("sqlitedisk.py", ["--db", tmp_path / "disk.sqlite"])
    p, uri = nbd_start(program, tmp_path, example)
    run("qemu-io", "-f", "raw", "-c", "write -P 0x5a 1M 64k", uri)
    p.stop()
    # Reopened without --size: the size and the data are the database's.
    p = program("sqlitedisk.py", "--db", tmp_path / "disk.sqlite",
                "--nbd", "nbd+unix:///?socket=%s" % (tmp_path / "n2.sock"))
    uri = p.uri("nbd+unix://")
    run("qemu-io", "-f", "raw", "-c", "read -P 0x5a 1M 64k", uri)
    rows = [line.split() for line in
            run("nbdinfo", "--map", uri).stdout.splitlines()]
    assert rows[0][:3] == ["0", str(1 << 20), "3"], rows     # a hole
    assert rows[1][:3] == [str(1 << 20), "65536", "0"], rows  # data
    assert int(rows[-1][0]) + int(rows[-1][1]) == SIZE
    p.stop()


def test_command_line_errors(tmp_path):
    """Refused before anything is served: one line, exit status 2."""
    def refused(script, *args):
        r = subprocess.run([sys.executable, str(EXAMPLES / script)] +
                           [str(a) for a in args], capture_output=True,
                           text=True, env=python_env(), timeout=60)
        assert r.returncode == 2, r
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        return r.stderr
    assert "--file PATH is required" in refused("filedisk.py", "--nbd",
                                                "nbd://127.0.0.1:0")
    assert "bogus" in refused("ramdisk.py", "--bogus")
    assert "block" in refused("ramdisk.py", "--size", "1M",
                              "--block-length", "1000", "--check")
    r = subprocess.run([sys.executable, str(EXAMPLES / "ramdisk.py"),
                        "--size", "4M", "--check"], capture_output=True,
                       text=True, env=python_env(), timeout=120)
    assert r.returncode == 0 and "0 failed" in r.stdout, r


def test_sigterm_with_requests_in_flight(program, tmp_path):
    """SIGTERM while a client keeps 32 requests in flight: the program
    answers what it has, stops cleanly (exit 0) and the client ends."""
    need("fio")
    if "nbd" not in run("fio", "--enghelp").stdout.split():
        pytest.skip("fio has no nbd engine")
    p, uri = nbd_start(program, tmp_path, ("ramdisk.py", []))
    fio = subprocess.Popen(
        ["fio", "--name=load", "--ioengine=nbd", "--uri=" + uri,
         "--rw=randrw", "--bs=4k", "--iodepth=32", "--size=16M",
         "--time_based", "--runtime=60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        assert fio.poll() is None, "fio ended before the signal"
        p.stop()                        # exit status 0, checked there
        fio.wait(30)                    # the client sees the end
    finally:
        if fio.poll() is None:
            fio.kill()
            fio.wait()
