"""Run the Python binding's tests: run.py BUILD TESTFILE...

pytest under Debian's python3 with BUILD/bindings/python on sys.path.
Exit status as every Spd test: 0 passed, 1 failed, 77 when something
could not run here (a tool or root missing): skipped tests are listed with
their reasons and the run is SKIP, never a pass.

An extension built with AddressSanitizer needs the ASan runtime loaded
before anything else in the process: python3 itself is not built with it,
so the runner starts again with LD_PRELOAD naming it (and, for the same
reason, the device programs the tests start get it too). Leak detection
is off for Python processes: the interpreter keeps its allocations to the
end by design, and LeakSanitizer would report all of them.
"""
import os
import subprocess
import sys


def asan_runtime(module_dir):
    """The ASan runtime the extension needs, or None."""
    for name in os.listdir(os.path.join(module_dir, "spd")):
        if name.startswith("_spd.") and name.endswith(".so"):
            out = subprocess.run(["ldd", os.path.join(module_dir, "spd", name)],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                if "libasan.so" in line and "=>" in line:
                    return line.split("=>")[1].split()[0]
    return None


def main():
    build = os.path.abspath(sys.argv[1])
    module_dir = os.path.join(build, "bindings", "python")
    env = os.environ
    runtime = asan_runtime(module_dir)
    if runtime and runtime not in env.get("LD_PRELOAD", ""):
        env = dict(env, LD_PRELOAD=runtime,
                   ASAN_OPTIONS=env.get("ASAN_OPTIONS", "") +
                   ":detect_leaks=0")
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    # The clients the tests run need no ASan: only Python processes get it.
    os.environ["SPD_PY_PRELOAD"] = os.environ.pop("LD_PRELOAD", "")
    os.environ["SPD_BUILD"] = build
    os.environ["PYTHONPATH"] = module_dir
    sys.path.insert(0, module_dir)

    import pytest

    class Skips:
        def __init__(self):
            self.reasons = []

        def pytest_runtest_logreport(self, report):
            if report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr,
                                                          tuple) else ""
                self.reasons.append("%s: %s" % (report.nodeid, reason))

    skips = Skips()
    status = pytest.main(["-q", "-p", "no:cacheprovider", "-rs"] +
                         sys.argv[2:], plugins=[skips])
    if status == 0 and skips.reasons:
        print("SKIP - not run here: " + "; ".join(skips.reasons))
        sys.exit(77)
    sys.exit(0 if status == 0 else 1)


if __name__ == "__main__":
    main()
