#!/usr/bin/env python3
"""Turns the guest's console log of a kselftest run into a host-side result.

The guest's /init prints EBB-KSELFTEST-BEGIN, runs the kselftest runner (KTAP: one
`ok`/`not ok` line per test, each test's own KTAP nested behind '# '), then prints
EBB-KSELFTEST-END rc=N and the kernel log between EBB-DMESG-BEGIN and -END, where a
warning or oops counts as a failure. Prints one line per test (the nested subtests where a test
has them), then `<name>: N passed, N failed, N skipped`; exits 1 on any failure,
including a guest that crashed or timed out before the end marker.
"""

import argparse
import json
import re
import sys

RESULT = re.compile(r"^(not ok|ok) (\d+) (.*?)(?:\s+#\s*(SKIP|TIMEOUT|XFAIL)\b\s*(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)$")
# Under ebbhv, the guest's console lines reach the host behind "[guest] ".
GUEST_PREFIX = re.compile(r"^\[guest\] ")
KERNEL_TROUBLE = re.compile(r"WARNING:|BUG:|Oops|Kernel panic|general protection fault|Call Trace:")


def outcome(status, directive):
    if directive == "SKIP":
        return "skip"
    if directive == "XFAIL":
        return "pass"
    return "pass" if status == "ok" else "fail"


def parse(lines):
    """Returns (results, finished): results is a list of (outcome, name, note)."""
    results, inner, plan = [], [], None
    begun = finished = False
    for raw in lines:
        line = GUEST_PREFIX.sub("", raw.rstrip("\r\n").replace("\r", ""))
        if "EBB-KSELFTEST-BEGIN" in line:
            begun = True
            continue
        if not begun:
            continue
        if "EBB-KSELFTEST-END" in line:
            finished = True
            break
        if line.startswith("# ") and not line.startswith("# # "):
            m = RESULT.match(line[2:])
            if m:
                inner.append((outcome(m[1], m[4]), m[3], m[5] or ""))
            continue
        m = PLAN.match(line)
        if m:
            # One plan per run of the kselftest runner; the guest may run it twice.
            plan = (plan or 0) + int(m[1])
            continue
        m = RESULT.match(line)
        if not m:
            continue
        name, _, extra = m[3].partition(" # ")
        name = name.removeprefix("selftests: ").replace(": ", ":", 1)
        top = outcome(m[1], m[4])
        note = m[5] or m[4] or extra
        if inner:
            results += [(o, f"{name}: {desc}", n) for o, desc, n in inner]
            if top == "fail" and all(o != "fail" for o, _, _ in inner):
                results.append(("fail", name, note or "test failed after its subtests"))
        else:
            results.append((top, name, note))
        inner = []
    if plan is not None:
        tops = len({r[1].split(": ")[0] for r in results})
        if finished and tops < plan:
            results.append(("fail", "kselftest runner", f"{plan - tops} of {plan} tests reported no result"))
    if not finished:
        results.append(("fail", "guest", "did not reach the end of the kselftests (crash or timeout)"))
    results += kernel_log_trouble(lines)
    return results, finished


def kernel_log_trouble(lines):
    """A kernel warning or oops during the run fails it even if every test passed."""
    in_dmesg, trouble = False, []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if "EBB-DMESG-BEGIN" in line:
            in_dmesg = True
        elif "EBB-DMESG-END" in line:
            break
        elif in_dmesg and KERNEL_TROUBLE.search(line):
            trouble.append(("fail", "kernel log", line.strip()))
    return trouble


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("log")
    ap.add_argument("--name", default="guest")
    ap.add_argument("--json")
    args = ap.parse_args()
    with open(args.log, errors="replace") as f:
        lines = f.readlines()
    results, finished = parse(lines)
    label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}
    for o, name, note in results:
        print(f"{label[o]} {name}" + (f"  ({note})" if note else ""))
    if not finished:
        print(f"--- last lines of {args.log} ---")
        sys.stdout.writelines(lines[-25:])
    counts = {k: sum(1 for o, _, _ in results if o == k) for k in label}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": [dict(outcome=o, name=n, note=t) for o, n, t in results],
                       **counts}, f, indent=1)
    print(f"{args.name}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
