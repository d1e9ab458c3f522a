#!/usr/bin/env python3
"""iscsi_cunit.py - read iscsi-test-cu's verbose output: print one line
"passed N failed N skipped N total N" (skipped: passed, but the test said
[SKIPPED], a command the target does not implement), then "FAILED
Suite.Test" for each failure. Checked against CUnit's own Run Summary.

Usage: iscsi_cunit.py LOG
"""
import re
import sys

RESULT = re.compile(r"(?<![\[\w])(passed|FAILED)(?![\]\w])")
results = {}
order = []
suite = test = None
skipped = set()
pending = ""
summary = None
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^Suite: (\S+)", line)
    if m:
        suite, test = m.group(1), None
        continue
    m = re.match(r"^  Test: (.*?) \.\.\.(.*)$", line)
    if m:
        test = f"{suite}.{m.group(1)}"
        order.append(test)
        rest = m.group(2)
    elif test and test not in results:
        rest = line
    else:
        rest = None
    if test and rest is not None and test not in results:
        r = RESULT.search(rest)
        before = rest[:r.start()] if r else rest
        if "[SKIPPED]" in before:
            skipped.add(test)
        if r:
            results[test] = r.group(1)
    m = re.match(r"^\s+tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", line)
    if m:
        summary = tuple(int(x) for x in m.groups())

failed = [t for t in order if results.get(t) == "FAILED"]
passed = [t for t in order if results.get(t) == "passed"]
unknown = [t for t in order if t not in results]
skip = [t for t in passed if t in skipped]
if summary is None:
    print("no CUnit Run Summary in the log", file=sys.stderr)
    sys.exit(2)
total, ran, npassed, nfailed = summary
if (len(order), len(passed), len(failed)) != (total, npassed, nfailed) or unknown:
    print(f"parse mismatch: parsed {len(order)}/{len(passed)}/{len(failed)}, "
          f"CUnit says {total}/{npassed}/{nfailed}; unknown {unknown}",
          file=sys.stderr)
    sys.exit(2)
print(f"passed {len(passed)} failed {len(failed)} skipped {len(skip)} "
      f"total {total}")
for t in failed:
    print(f"FAILED {t}")
