"""Shared by the Python binding's tests: skips with reasons, and the
example device programs started as a user would (run.py sets the
environment)."""
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def need(*commands):
    for c in commands:
        if not shutil.which(c, path="/usr/bin:/usr/sbin:/bin:/sbin"):
            pytest.skip("%s is not installed" % c)


def need_root(why):
    if os.geteuid() != 0:
        pytest.skip("needs root: " + why)


def run(*args, check=True, **kw):
    """A client command; its output in the failure message."""
    r = subprocess.run([str(a) for a in args], capture_output=True,
                       text=True, **kw)
    if check and r.returncode:
        pytest.fail("%s exited %d:\n%s%s" % (" ".join(map(str, args)),
                                              r.returncode, r.stdout,
                                              r.stderr))
    return r


def python_env():
    env = dict(os.environ)
    if env.get("SPD_PY_PRELOAD"):
        env["LD_PRELOAD"] = env["SPD_PY_PRELOAD"]
    return env


def wait_until(what, check, seconds=30):
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for " + what)
        time.sleep(0.05)


class Program:
    """An example device program (spd.main()) serving until stop()."""

    def __init__(self, work, script, *args):
        self.log = work / (script + ".log")
        pid_file = work / (script + ".pid")
        pid_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script)] + [str(a) for a in args]
            + ["--pid-file", str(pid_file)],
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT,
            env=python_env())
        wait_until("%s to serve" % script,
                   lambda: pid_file.exists() or self.proc.poll() is not None,
                   60)
        if self.proc.poll() is not None:
            pytest.fail("%s exited %d:\n%s" % (script, self.proc.returncode,
                                               self.output()))

    def output(self):
        return self.log.read_text()

    def uri(self, prefix):
        for m in re.finditer(r"serving (\S+)", self.output()):
            if m.group(1).startswith(prefix):
                return m.group(1)
        pytest.fail("no %s serving line:\n%s" % (prefix, self.output()))

    def stop(self):
        """SIGTERM: a clean exit, status 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("the device did not stop on SIGTERM")
        assert status == 0, self.output()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def program(tmp_path):
    """program(script, *args): a started example, killed after the test
    if it still runs."""
    started = []

    def start(script, *args):
        p = Program(tmp_path, script, *args)
        started.append(p)
        return p
    yield start
    for p in started:
        p.kill()
