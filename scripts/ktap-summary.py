#!/usr/bin/env python3
"""Turns the guest's console log of a kselftest run into a host-side result.

The guest's /init (tests/guest/init) prints EBB-KSELFTEST-BEGIN, one
`EBB-KSELFTEST-EXPECT <collection:test>` line per kselftest it is about to run, then
runs the kselftest runner once per test (KTAP: a plan, one `ok`/`not ok` line per
test, each test's own KTAP nested behind '# '), writing `EBB-TEST-BEGIN <test>` and
`EBB-TEST-END <test>` into the kernel log around each. Then it prints
`EBB-KSELFTEST-END rc=N` and the whole kernel log between EBB-DMESG-BEGIN and -END.

Prints one line per test (the nested subtests where a test has them), then
`<name>: N passed, N failed, N skipped`; exits 1 on any failure. A failed test is
followed by the diagnostics its test printed before the result (up to CONTEXT_LINES
`# ` lines), so that a log's tail says why it failed. Besides a test's own
`not ok`, these fail the run:
  - no end marker (the guest crashed, hung or was cut off), a runner status rc != 0
    that no failed test explains, no plan, fewer results than planned, an expected
    test without a result, no list of expected tests, the runner's own errors
    ("No such collection", "No such test", a missing or non-executable test);
  - a SKIP that the allow-list (--allowed-skips FILE) does not name;
  - a non-zero status of the run itself (--run-status: QEMU, the hypervisor);
  - in the kernel log: a missing or cut-short dump, a dump that does not start with
    the boot banner (the log buffer wrapped), a test's missing EBB-TEST-BEGIN mark,
    and every warning, BUG, oops, lockdep report, hung task, KASAN/UBSAN report or
    stack dump, each attributed to the test during which it was logged.

Allow-list format: one entry per line, `<collection:test> <regex>`; `#` starts a
comment line. The test may be a shell-style pattern (fnmatch); the regex is searched
in the skipped result's description and reason.
"""

import argparse
import fnmatch
import json
import re
import sys

RESULT = re.compile(r"^(not ok|ok) (\d+) (.*?)(?:\s+#\s*(SKIP|TIMEOUT|XFAIL)\b\s*(.*))?$")
# A plan; a test that skips as a whole prints "1..0 # SKIP reason".
PLAN = re.compile(r"^1\.\.(\d+)(?:\s+#.*)?$")
END = re.compile(r"EBB-KSELFTEST-END(?: rc=(\d+))?")
EXPECT = re.compile(r"EBB-KSELFTEST-EXPECT (\S+)")
# Under ebbhv, the guest's console lines reach the host behind "[guest] ".
GUEST_PREFIX = re.compile(r"^\[guest\] ")
# Console lines that are not the guest's: ebbhv's own, the host agent's, the port-0xE9
# early console's.
OTHER_SOURCE = re.compile(r"^\[(hv|host|e9)\] ")
# The printk timestamp in front of a kernel log line.
TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
# What the kselftest runner (and /init) say when they cannot run what was asked.
RUNNER_ERROR = re.compile(
    r"No such collection|No such test|Warning: file .* is (missing|not executable)"
    r"|run_kselftest\.sh: .*not found|Could not find list of tests to run"
    r"|Error: BASE_DIR must be set")
# The first line of a splat: warnings, BUGs (including "sleeping function called
# from invalid context" and soft lockups), oopses, panics, lockdep, hung tasks,
# KASAN/UBSAN, KFENCE ("BUG: KFENCE: ..."), SLUB debug reports, RCU stalls.
KERNEL_TROUBLE = re.compile(
    r"WARNING:|BUG:|kernel BUG|Oops|Kernel panic|general protection fault"
    r"|sleeping function called from invalid context"
    r"|possible (circular|recursive) locking|inconsistent lock state"
    r"|blocked for more than \d+ seconds|KASAN:|UBSAN:|detected stall|hard LOCKUP|soft lockup"
    # SLUB's debug reports: "BUG kmalloc-64 (Not tainted): Poison overwritten".
    r"|^BUG \S+ \((Not t|T)ainted\): ")
# A stack dump with no splat line before it (dump_stack(), an allocation failure, the
# OOM killer) fails too.
STACK_DUMP = re.compile(r"Call Trace:")
# A splat's report runs from its first line to its stack dump ("Call Trace:"), which
# it explains; lockdep's, with the whole dependency chain, takes well over 100 lines.
# At most this many lines count as one report.
SPLAT_LINES = 250
# Splats of the kernel itself that ebb's tests provoke without a bug of ebb's, each
# with every line that must follow its first (in its report) and why it is no
# failure. Printed as KNOWN, counted nowhere.
KNOWN_SPLATS = [
    ("lockdep: memory hot-remove (mem_hotplug_lock held in try_remove_memory) waits for "
     "the kernfs active reference of a memory block's sysfs file, which a sysfs offline "
     "holds while it takes mem_hotplug_lock; both run under device_hotplug_lock (the "
     "sysfs side only by trylock and restart), so the cycle cannot close",
     re.compile(r"WARNING: possible circular locking dependency detected"),
     [re.compile(r"is trying to acquire lock:"),
      re.compile(r"\(kn->active#\d+\)\{.*\}, at: __kernfs_remove"),
      re.compile(r"\(mem_hotplug_lock\)\{.*\}, at: try_remove_memory"),
      re.compile(r"memory_subsys_offline"),
      re.compile(r"remove_memory_block_devices")]),
]
known_seen = []


def report(dump, i):
    """The lines of the splat starting at dump[i]: up to its stack dump, if it has one."""
    end = min(len(dump), i + SPLAT_LINES)
    for j in range(i + 1, end):
        if STACK_DUMP.search(dump[j]):
            return dump[i:j + 1]
    return dump[i:end]


def known_splat(dump, i):
    """The KNOWN_SPLATS entry the splat starting at dump[i] is, if any."""
    text = TIMESTAMP.sub("", dump[i])
    following = report(dump, i)
    for why, first, needed in KNOWN_SPLATS:
        if first.search(text) and all(any(r.search(l) for l in following) for r in needed):
            return why
    return None
BANNER = "Linux version "
# The diagnostics kept for a failed result: the test's last messages before it.
CONTEXT_LINES = 12


def clean(raw):
    return GUEST_PREFIX.sub("", raw.rstrip("\r\n").replace("\r", ""))


def outcome(status, directive):
    if directive == "SKIP":
        return "skip"
    if directive == "XFAIL":
        return "pass"
    return "pass" if status == "ok" else "fail"


class Result:
    """One line of the summary; `test` is the collection:test it belongs to (or a
    harness part such as "kernel log"), `desc` the subtest's description."""

    def __init__(self, outcome, test, desc="", note="", context=()):
        self.outcome, self.test, self.desc, self.note = outcome, test, desc, note
        self.context = list(context)

    @property
    def name(self):
        return f"{self.test}: {self.desc}" if self.desc else self.test

    def as_tuple(self):
        return (self.outcome, self.name, self.note)


def read_allow_list(path):
    """Returns [(test pattern, compiled regex)] from an allow-list file, [] if absent."""
    entries = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                test, _, pattern = line.partition(" ")
                entries.append((test, re.compile(pattern.strip())))
    except FileNotFoundError:
        pass
    return entries


def skip_allowed(result, allow):
    text = f"{result.desc} {result.note}".strip()
    return any(fnmatch.fnmatchcase(result.test, test) and rx.search(text) for test, rx in allow)


def parse_ktap(lines):
    """Reads the kselftest part of the log. Returns (results, run facts)."""
    results, inner, inner_plan = [], [], None
    # The test's own messages ("# # " once nested by the runner) since its last result.
    recent = []
    tops, expected = [], []
    plan = rc = None
    begun = finished = False
    runner_errors = []
    for raw in lines:
        line = clean(raw)
        if "EBB-KSELFTEST-BEGIN" in line:
            begun = True
            continue
        if not begun:
            continue
        m = END.search(line)
        if m:
            finished = True
            rc = int(m[1]) if m[1] is not None else None
            break
        m = EXPECT.search(line)
        if m:
            expected.append(m[1])
            continue
        if not line.startswith("# # ") and RUNNER_ERROR.search(line):
            runner_errors.append(line.removeprefix("# ").strip())
            continue
        if line.startswith("# # "):
            recent = (recent + [line[4:].rstrip()])[-CONTEXT_LINES:]
            continue
        if line.startswith("# "):
            m = RESULT.match(line[2:])
            if m:
                inner.append((outcome(m[1], m[4]), m[3], m[5] or "", recent))
                recent = []
            m = PLAN.match(line[2:])
            if m:
                inner_plan = int(m[1])
            continue
        m = PLAN.match(line)
        if m:
            # One plan per run of the kselftest runner; the guest runs it per test.
            plan = (plan or 0) + int(m[1])
            continue
        m = RESULT.match(line)
        if not m:
            continue
        name, _, extra = m[3].partition(" # ")
        name = name.removeprefix("selftests: ").replace(": ", ":", 1)
        top = outcome(m[1], m[4])
        note = m[5] or m[4] or extra
        tops.append((name, top))
        missing = (inner_plan or 0) - len(inner)
        if inner:
            results += [Result(o, name, desc, n, ctx if o == "fail" else ()) for o, desc, n, ctx in inner]
            if top == "fail" and all(o != "fail" for o, _, _, _ in inner):
                why = note or "test failed after its subtests"
                if missing > 0:
                    why += f"; {missing} of {inner_plan} planned subtests reported no result"
                results.append(Result("fail", name, "", why, recent))
            elif missing > 0:
                results.append(Result("fail", name, "",
                                      f"{missing} of {inner_plan} planned subtests reported no result"))
        else:
            results.append(Result(top, name, "", note, recent if top == "fail" else ()))
        inner, inner_plan, recent = [], None, []
    return results, dict(begun=begun, finished=finished, rc=rc, plan=plan, tops=tops,
                         expected=expected, runner_errors=runner_errors)


def check_run(facts):
    """Failures of the run as a whole: what the runner and /init reported, or did not."""
    out = []
    for err in facts["runner_errors"]:
        out.append(Result("fail", "kselftest runner", "", err))
    if not facts["finished"]:
        what = "did not reach the end of the kselftests (crash, hang or timeout)"
        if not facts["begun"]:
            what = "never started the kselftests"
        out.append(Result("fail", "guest", "", what))
        return out
    tops = facts["tops"]
    if facts["rc"] is None:
        out.append(Result("fail", "kselftest runner", "", "end marker without an exit status"))
    elif facts["rc"] != 0 and not facts["runner_errors"] and not any(o == "fail" for _, o in tops):
        out.append(Result("fail", "kselftest runner", "",
                          f"exit status {facts['rc']} though no test reported a failure"))
    if facts["plan"] is None:
        out.append(Result("fail", "kselftest runner", "", "no plan (1..N) was printed"))
    elif len(tops) < facts["plan"]:
        out.append(Result("fail", "kselftest runner", "",
                          f"{facts['plan'] - len(tops)} of {facts['plan']} planned tests reported no result"))
    if not facts["expected"]:
        out.append(Result("fail", "guest", "", "no EBB-KSELFTEST-EXPECT list of the tests to run"))
    seen = {name for name, _ in tops}
    for name in facts["expected"]:
        if name not in seen:
            out.append(Result("fail", name, "", "expected, but the runner reported no result"))
    return out


def kernel_log(lines, expected):
    """The kernel log dump: complete, from boot, every test marked, and clean. Every
    splat is charged to the test whose EBB-TEST-BEGIN mark it follows."""
    out = []
    dump, state = [], "before"
    for raw in lines:
        if OTHER_SOURCE.match(raw):
            continue
        line = clean(raw)
        if state == "before" and line.strip() == "EBB-DMESG-BEGIN":
            state = "in"
        elif state == "in" and line.strip() == "EBB-DMESG-END":
            state = "done"
            break
        elif state == "in":
            dump.append(line)
    if state == "before":
        return [Result("fail", "kernel log", "", "no kernel log dump (EBB-DMESG-BEGIN)")]
    if state == "in":
        out.append(Result("fail", "kernel log", "", "dump cut short (no EBB-DMESG-END)"))
    first = next((TIMESTAMP.sub("", l) for l in dump if l.strip()), "")
    if not first.startswith(BANNER):
        out.append(Result("fail", "kernel log", "",
                          f"does not start at boot (log buffer too small?): first line '{first[:100]}'"))
    known_seen.clear()
    where, marked, armed = "boot", set(), None
    for i, line in enumerate(dump):
        text = TIMESTAMP.sub("", line)
        m = re.search(r"EBB-TEST-(BEGIN|END) (\S+)", text)
        if m:
            if m[1] == "BEGIN":
                where = m[2]
                marked.add(m[2])
            else:
                where = f"after {m[2]}"
            armed = None
            continue
        if KERNEL_TROUBLE.search(text):
            armed = i
            why = known_splat(dump, i)
            if why:
                known_seen.append(f"{where}: {text.strip()} ({why})")
                continue
        elif STACK_DUMP.search(text):
            # The stack dump of the splat just reported is no second failure.
            explained = armed is not None and i - armed <= SPLAT_LINES
            armed = None
            if explained:
                continue
        else:
            continue
        out.append(Result("fail", f"kernel log ({where})", "", line.strip()))
    for name in expected:
        if name not in marked:
            out.append(Result("fail", "kernel log", "", f"no EBB-TEST-BEGIN mark for {name}"))
    return out


def parse(lines, allow=None, run_status=0, run_note=""):
    """Returns (results, facts): results is a list of Result, in the order printed.
    allow: the allow-list of skips ([] allows none), None to accept every skip."""
    results, facts = parse_ktap(lines)
    if allow is not None:
        for r in results:
            if r.outcome == "skip" and not skip_allowed(r, allow):
                r.outcome = "fail"
                r.note = f"unexpected SKIP: {r.note}" if r.note else "unexpected SKIP"
    results += check_run(facts)
    if run_status:
        results.append(Result("fail", "guest run", "", run_note or f"exit status {run_status}"))
    if facts["finished"]:
        results += kernel_log(lines, facts["expected"])
    return results, facts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log")
    ap.add_argument("--name", default="guest")
    ap.add_argument("--json")
    ap.add_argument("--allowed-skips", metavar="FILE",
                    help="skips allowed on this platform (a missing file allows none); "
                         "without this option every skip is accepted")
    ap.add_argument("--run-status", type=int, default=0,
                    help="exit status of the run (QEMU or the hypervisor); non-zero fails")
    ap.add_argument("--run-note", default="", help="what that status means")
    args = ap.parse_args(argv)
    with open(args.log, errors="replace") as f:
        lines = f.readlines()
    allow = read_allow_list(args.allowed_skips) if args.allowed_skips else None
    results, facts = parse(lines, allow, args.run_status, args.run_note)
    label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}
    for r in results:
        print(f"{label[r.outcome]} {r.name}" + (f"  ({r.note})" if r.note else ""))
        for line in r.context:
            print(f"    | {line}")
    if not facts["finished"] or args.run_status:
        print(f"--- last lines of {args.log} ---")
        sys.stdout.writelines(lines[-25:])
    for seen in known_seen:
        print(f"KNOWN kernel log ({seen})")
    if any("lockdep" in seen for seen in known_seen):
        print("NOTE: lockdep turns itself off after its first report: what ran after the "
              "KNOWN one above ran without lock-order checking")
    counts = {k: sum(1 for r in results if r.outcome == k) for k in label}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": [dict(outcome=r.outcome, name=r.name, note=r.note,
                                        **({"context": r.context} if r.context else {}))
                                   for r in results],
                       "expected": facts["expected"], "rc": facts["rc"],
                       "finished": facts["finished"], "run_status": args.run_status,
                       **counts}, f, indent=1)
    print(f"{args.name}: {counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
