#!/usr/bin/env python3
"""Host tests of scripts/ktap-summary.py: a clean guest log passes, and each way a
guest run can go wrong (or hide what went wrong) fails with exactly the expected
results.

    python3 scripts/tests/test_ktap_summary.py            (unittest)
    python3 scripts/tests/test_ktap_summary.py --ebb-lines
        one `PASS|FAIL host: ktap-summary: <case>` line per case, for scripts/test-all.sh

The logs are built as the guest prints them under ebbhv ("[guest] " in front of each
console line), with the test names and skip reasons of the real kselftests, and the
allow-lists are the repository's own (tests/selftests/ebb/expected-skips.*).
"""

import contextlib
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import traceback
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location("ktap_summary", os.path.join(ROOT, "scripts", "ktap-summary.py"))
ktap_summary = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(ktap_summary)
SKIPS = os.path.join(ROOT, "tests", "selftests", "ebb", "expected-skips.")

TESTS = ["memory-hotplug:mem-on-off-test.sh", "ebb:module.sh", "ebb:balloon.sh"]

KTAP = {
    "memory-hotplug:mem-on-off-test.sh": """\
# timeout set to 45
# selftests: memory-hotplug: mem-on-off-test.sh
# Test scope: 2% hotplug memory
# online all hot-pluggable memory in offline state:
# 	SKIPPED - no hot-pluggable memory in offline state
ok 1 selftests: memory-hotplug: mem-on-off-test.sh
""",
    "ebb:module.sh": """\
# timeout set to 300
# selftests: ebb: module.sh
# TAP version 13
# 1..4
# # running on Xen: ebb.ko must load
# ok 1 insmod on Xen loads the module and reports the domain type
# ok 2 rmmod unloads the module
# ok 3 refusal off Xen (running on Xen) # SKIP
# ok 4 20 load attempts leave MemTotal and the module list unchanged
# # 1 skipped test(s) detected.  Consider enabling relevant config options to improve coverage.
# # Totals: pass:3 fail:0 xfail:0 xpass:0 skip:1 error:0
ok 1 selftests: ebb: module.sh
""",
    "ebb:balloon.sh": """\
# timeout set to 300
# selftests: ebb: balloon.sh
# TAP version 13
# 1..3
# ok 1 sysfs files exist with the C driver's modes
# ok 2 balloon down 256 MiB: MemTotal and current_kb follow
# ok 3 no kernel warning while ballooning
# # Totals: pass:3 fail:0 xfail:0 xpass:0 skip:0 error:0
ok 1 selftests: ebb: balloon.sh
""",
}

# What the kernel logged while each test ran (after its EBB-TEST-BEGIN mark).
KERNEL = {
    "memory-hotplug:mem-on-off-test.sh": ["kselftest: Running tests in memory-hotplug",
                                          "Offlined Pages 32768"],
    "ebb:module.sh": ["kselftest: Running tests in ebb", "ebb: loaded on a Xen PVH domain",
                      "ebb: unloaded, 0 pages given back"],
    "ebb:balloon.sh": ["kselftest: Running tests in ebb", "ebb: loaded on a Xen PVH domain",
                       "ebb: unloaded, 65536 pages given back"],
}

BOOT = ["Linux version 7.3.4 (root@ebb) (gcc (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC",
        "Command line: console=hvc0 xen_console_io=1 panic=-1 loglevel=2 log_buf_len=8M",
        "BIOS-provided physical RAM map:",
        "Run /init as init process"]

WARNING = [
    "------------[ cut here ]------------",
    "WARNING: CPU: 0 PID: 77 at xen-balloon/balloon.rs:321 ebb::balloon::worker+0x1f0/0x400 [ebb]",
    "Modules linked in: ebb",
    "Call Trace:",
    " <TASK>",
    " process_one_work+0x170/0x330",
    " </TASK>",
    "---[ end trace 0000000000000000 ]---",
]


def kernel_log(boot=True, extra=None):
    """The dump's lines: boot, then each test's window; extra[test] adds lines to it."""
    extra = extra or {}
    lines, t = (list(BOOT) if boot else []), 1.0
    for test in TESTS:
        for text in [f"EBB-TEST-BEGIN {test}", *KERNEL[test], *extra.get(test, []), f"EBB-TEST-END {test}"]:
            lines.append(f"[{t:12.6f}] {text}")
            t += 0.5
    return lines


def console(ktap=None, rc=0, expect=None, dmesg=None, end=True, dmesg_end=True):
    """A whole console log as run-guest.sh stores it."""
    ktap = KTAP if ktap is None else ktap
    out = ["[hv] ebbhv: domain 1 (PVH), 1024 MiB, maximum 1536 MiB", "[guest] EBB-KSELFTEST-BEGIN"]
    out += [f"[guest] EBB-KSELFTEST-EXPECT {t}" for t in (TESTS if expect is None else expect)]
    for test in TESTS:
        if test in ktap:
            out += ["[guest] TAP version 13", "[guest] 1..1"]
            out += [f"[guest] {line}" for line in ktap[test].splitlines()]
    if end:
        out.append(f"[guest] EBB-KSELFTEST-END rc={rc}")
        # ebbhv and the host agent may write between the guest's lines.
        out.append("[guest] EBB-DMESG-BEGIN")
        out.append("[hv] vcpu0: 1200 exits/s, WARNING: not the guest's")
        out.append("[host] request 1a2b: ebbctl info --raw -> 0")
        out += [f"[guest] {line}" for line in (kernel_log() if dmesg is None else dmesg)]
        if dmesg_end:
            out.append("[guest] EBB-DMESG-END")
            out.append("[hv] guest powered off")
    return "\n".join(out) + "\n"


class Summary(unittest.TestCase):
    def summarise(self, log, platform="ebbhv", *extra_args):
        """Runs the summariser's main() on log; returns (exit status, counts, results, stdout)."""
        with tempfile.TemporaryDirectory() as tmp:
            path, js = os.path.join(tmp, "console.log"), os.path.join(tmp, "summary.json")
            with open(path, "w") as f:
                f.write(log)
            args = [path, "--json", js, *extra_args]
            if platform:
                args += ["--allowed-skips", SKIPS + platform]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                status = ktap_summary.main(args)
            with open(js) as f:
                data = json.load(f)
        counts = (data["pass"], data["fail"], data["skip"])
        return status, counts, data["results"], out.getvalue()

    def failures(self, results):
        return [(r["name"], r["note"]) for r in results if r["outcome"] == "fail"]

    def test_good_log(self):
        """a clean run passes: every subtest counted, the one allowed skip a skip"""
        status, counts, results, out = self.summarise(console())
        self.assertEqual(status, 0, out)
        self.assertEqual(counts, (7, 0, 1))
        self.assertIn("guest: 7 passed, 0 failed, 1 skipped", out)
        self.assertIn({"outcome": "skip", "name": "ebb:module.sh: refusal off Xen (running on Xen)", "note": ""},
                      results)

    def test_empty_log(self):
        """an empty console log fails: the guest never started the kselftests"""
        status, counts, results, _ = self.summarise("")
        self.assertEqual(status, 1)
        self.assertEqual(counts, (0, 1, 0))
        self.assertEqual(self.failures(results), [("guest", "never started the kselftests")])

    def test_only_markers_rc1(self):
        """only the begin and end markers with rc=1: no plan, no list, no kernel log, rc fail it"""
        log = "[guest] EBB-KSELFTEST-BEGIN\n[guest] EBB-KSELFTEST-END rc=1\n"
        status, counts, results, _ = self.summarise(log)
        self.assertEqual(status, 1)
        self.assertEqual(counts, (0, 4, 0))
        self.assertEqual(self.failures(results), [
            ("kselftest runner", "exit status 1 though no test reported a failure"),
            ("kselftest runner", "no plan (1..N) was printed"),
            ("guest", "no EBB-KSELFTEST-EXPECT list of the tests to run"),
            ("kernel log", "no kernel log dump (EBB-DMESG-BEGIN)"),
        ])

    def test_no_such_collection(self):
        """the runner's "No such collection" fails the run, and every expected test is missing"""
        log = console(ktap={}, rc=1).replace(
            "[guest] EBB-KSELFTEST-END", "[guest] No such collection 'ebb'\n[guest] EBB-KSELFTEST-END")
        status, counts, results, _ = self.summarise(log)
        self.assertEqual(status, 1)
        self.assertEqual(counts, (0, 5, 0))
        self.assertEqual(self.failures(results), [
            ("kselftest runner", "No such collection 'ebb'"),
            ("kselftest runner", "no plan (1..N) was printed"),
            *[(t, "expected, but the runner reported no result") for t in TESTS],
        ])

    def test_no_such_test(self):
        """a test the runner does not know ("No such test") fails, though the others passed"""
        ktap = dict(KTAP)
        del ktap["ebb:balloon.sh"]
        log = console(ktap=ktap, rc=1).replace(
            "[guest] EBB-KSELFTEST-END", "[guest] No such test 'ebb:balloon.sh'\n[guest] EBB-KSELFTEST-END")
        status, counts, results, _ = self.summarise(log)
        self.assertEqual(status, 1)
        self.assertEqual(counts, (4, 2, 1))
        self.assertEqual(self.failures(results), [
            ("kselftest runner", "No such test 'ebb:balloon.sh'"),
            ("ebb:balloon.sh", "expected, but the runner reported no result"),
        ])

    def test_missing_end_marker(self):
        """a run cut off in the middle of a test (no end marker) fails, whatever passed before"""
        log = console(end=False)
        log = log[:log.index("[guest] # ok 2 balloon down")]
        status, counts, results, out = self.summarise(log, "ebbhv", "--run-status", "124",
                                                      "--run-note", "timed out after 900 s")
        self.assertEqual(status, 1)
        self.assertEqual(counts, (4, 2, 1))
        self.assertEqual(self.failures(results), [
            ("guest", "did not reach the end of the kselftests (crash, hang or timeout)"),
            ("guest run", "timed out after 900 s"),
        ])
        self.assertIn("--- last lines of", out)

    def test_fewer_results_than_plan(self):
        """a test whose result line never came: fewer results than planned, and that test missing"""
        ktap = dict(KTAP, **{"ebb:balloon.sh": KTAP["ebb:balloon.sh"].replace(
            "ok 1 selftests: ebb: balloon.sh\n", "")})
        status, counts, results, _ = self.summarise(console(ktap=ktap))
        self.assertEqual(status, 1)
        self.assertEqual(counts, (4, 2, 1))
        self.assertEqual(self.failures(results), [
            ("kselftest runner", "1 of 3 planned tests reported no result"),
            ("ebb:balloon.sh", "expected, but the runner reported no result"),
        ])

    def test_fewer_subtests_than_plan(self):
        """a test that exits 0 after 2 of its 3 planned subtests fails"""
        ktap = dict(KTAP, **{"ebb:balloon.sh": KTAP["ebb:balloon.sh"].replace(
            "# ok 3 no kernel warning while ballooning\n", "")})
        status, counts, results, _ = self.summarise(console(ktap=ktap))
        self.assertEqual(status, 1)
        self.assertEqual(counts, (6, 1, 1))
        self.assertEqual(self.failures(results), [("ebb:balloon.sh", "1 of 3 planned subtests reported no result")])

    def test_rc_explained_by_failed_test(self):
        """a failed test fails once: the runner's rc=1 that it explains adds no second failure"""
        ktap = dict(KTAP, **{"ebb:balloon.sh": KTAP["ebb:balloon.sh"]
                             .replace("# ok 2 balloon", "# not ok 2 balloon")
                             .replace("ok 1 selftests: ebb: balloon.sh", "not ok 1 selftests: ebb: balloon.sh # exit=1")})
        status, counts, results, _ = self.summarise(console(ktap=ktap, rc=1))
        self.assertEqual(status, 1)
        self.assertEqual(counts, (6, 1, 1))
        self.assertEqual(self.failures(results),
                         [("ebb:balloon.sh: balloon down 256 MiB: MemTotal and current_kb follow", "")])

    def test_failure_carries_its_diagnostics(self):
        """a failed subtest is printed with the messages its test gave just before it, and
        only those (not an earlier subtest's, not the runner's totals)"""
        ktap = dict(KTAP, **{"ebb:balloon.sh": KTAP["ebb:balloon.sh"]
                             .replace("# ok 1 sysfs", "# # target 786432 KiB\n# ok 1 sysfs")
                             .replace("# ok 2 balloon", "# # MemTotal 1000 kB\n# # books disagree: state stalled;\n"
                                      "# not ok 2 balloon")
                             .replace("ok 1 selftests: ebb: balloon.sh", "not ok 1 selftests: ebb: balloon.sh # exit=1")})
        status, counts, results, out = self.summarise(console(ktap=ktap, rc=1))
        self.assertEqual(status, 1)
        failed = [r for r in results if r["outcome"] == "fail"]
        self.assertEqual([r["context"] for r in failed], [["MemTotal 1000 kB", "books disagree: state stalled;"]])
        self.assertNotIn("context", next(r for r in results if r["name"].endswith("C driver's modes")))
        self.assertIn("FAIL ebb:balloon.sh: balloon down 256 MiB: MemTotal and current_kb follow\n"
                      "    | MemTotal 1000 kB\n    | books disagree: state stalled;\n", out)

    def test_unexpected_skip(self):
        """a SKIP under ebbhv that expected-skips.ebbhv does not list (no host agent) fails"""
        ktap = dict(KTAP, **{"ebb:balloon.sh": """\
# selftests: ebb: balloon.sh
# TAP version 13
# 1..1
# ok 1 balloon through sysfs (no host agent answers) # SKIP
# # Totals: pass:0 fail:0 xfail:0 xpass:0 skip:1 error:0
ok 1 selftests: ebb: balloon.sh # SKIP
"""})
        status, counts, results, _ = self.summarise(console(ktap=ktap))
        self.assertEqual(status, 1)
        self.assertEqual(counts, (4, 1, 1))
        self.assertEqual(self.failures(results),
                         [("ebb:balloon.sh: balloon through sysfs (no host agent answers)", "unexpected SKIP")])

    def test_allowed_skip_per_platform(self):
        """the refusal-off-Xen skip is allowed under ebbhv only; without a list every skip is accepted"""
        self.assertEqual(self.summarise(console(), "ebbhv")[:2], (0, (7, 0, 1)))
        status, counts, results, _ = self.summarise(console(), "qemu")
        self.assertEqual((status, counts), (1, (7, 1, 0)))
        self.assertEqual(self.failures(results),
                         [("ebb:module.sh: refusal off Xen (running on Xen)", "unexpected SKIP")])
        # A platform without a list allows no skip; no --allowed-skips accepts every skip.
        self.assertEqual(self.summarise(console(), "no-such-platform")[:2], (1, (7, 1, 0)))
        self.assertEqual(self.summarise(console(), None)[:2], (0, (7, 0, 1)))

    def test_warning_attributed_to_test(self):
        """a warning in the middle of the run fails once, charged to the test it happened in"""
        log = console(dmesg=kernel_log(extra={"ebb:module.sh": WARNING}))
        status, counts, results, _ = self.summarise(log)
        self.assertEqual(status, 1)
        self.assertEqual(counts, (7, 1, 1))
        [(name, note)] = self.failures(results)
        self.assertEqual(name, "kernel log (ebb:module.sh)")
        self.assertIn("WARNING: CPU: 0 PID: 77 at xen-balloon/balloon.rs:321", note)

    def test_other_splats(self):
        """every kind of splat fails where it happened: sleep in atomic, lockdep, hung task, KASAN, KFENCE, SLUB debug, oops, stack dump"""
        log = console(dmesg=kernel_log(extra={
            "memory-hotplug:mem-on-off-test.sh": [
                "BUG: sleeping function called from invalid context at mm/page_alloc.c:4400",
                "Call Trace:"],
            "ebb:module.sh": [
                "WARNING: possible circular locking dependency detected",
                "INFO: task kworker/0:1:42 blocked for more than 122 seconds.",
                "BUG: KASAN: slab-use-after-free in ebb_worker+0x10/0x20 [ebb]"],
            "ebb:balloon.sh": ["CPU: 0 UID: 0 PID: 9 Comm: sh", "Call Trace:", " dump_stack_lvl+0x5d/0x80",
                               "BUG: KFENCE: use-after-free read in ebb_worker+0x10/0x20 [ebb]",
                               "BUG kmalloc-64 (Not tainted): Poison overwritten"],
        }))
        log = log.replace("EBB-TEST-END ebb:module.sh\n",
                          "EBB-TEST-END ebb:module.sh\n[guest] [  99.000000] Oops: general protection fault\n")
        status, counts, results, _ = self.summarise(log)
        self.assertEqual(status, 1)
        self.assertEqual(counts, (7, 8, 1))
        self.assertEqual(sorted(n for n, _ in self.failures(results)), sorted([
            "kernel log (memory-hotplug:mem-on-off-test.sh)",
            "kernel log (ebb:module.sh)", "kernel log (ebb:module.sh)", "kernel log (ebb:module.sh)",
            "kernel log (after ebb:module.sh)", "kernel log (ebb:balloon.sh)",
            "kernel log (ebb:balloon.sh)", "kernel log (ebb:balloon.sh)"]))

    def test_known_hot_remove_lockdep_report(self):
        """the kernel's own lockdep report on memory hot-remove vs a sysfs offline is KNOWN, not failed; any other lockdep report fails"""
        report = [
            "WARNING: possible circular locking dependency detected",
            "kworker/0:1/9 is trying to acquire lock:",
            "ffff88801c3fc428 (kn->active#2){++++}-{0:0}, at: __kernfs_remove+0x10a/0x217",
            "but task is already holding lock:",
            "ffffffff818f90b0 (mem_hotplug_lock){++++}-{0:0}, at: try_remove_memory+0x4a/0xf2",
            "       memory_subsys_offline+0x6b/0x123",
            "       remove_memory_block_devices+0x77/0x7e",
            "Call Trace:"]
        status, counts, results, out = self.summarise(console(dmesg=kernel_log(extra={"ebb:balloon.sh": report})))
        self.assertEqual((status, counts, self.failures(results)), (0, (7, 0, 1), []))
        self.assertIn("KNOWN kernel log (ebb:balloon.sh: WARNING: possible circular locking", out)
        other = [line.replace("try_remove_memory", "ebb_worker") for line in report]
        status, counts, results, _ = self.summarise(console(dmesg=kernel_log(extra={"ebb:balloon.sh": other})))
        self.assertEqual((status, [n for n, _ in self.failures(results)]), (1, ["kernel log (ebb:balloon.sh)"]))

    def test_long_lockdep_report_once(self):
        """a lockdep report of 100+ lines counts once (its stack dump is no second failure), KNOWN or not"""
        chain = [f"       frame_{n}+0x10/0x20" for n in range(90)]
        report = [
            "WARNING: possible circular locking dependency detected",
            "7.3.4 #1 Tainted: G           O",
            "kworker/0:0/7 is trying to acquire lock:",
            "ffff888000dd5798 (kn->active#12){++++}-{0:0}, at: __kernfs_remove+0x10a/0x217",
            "but task is already holding lock:",
            "ffffffff818f90b0 (mem_hotplug_lock){++++}-{0:0}, at: try_remove_memory+0x4a/0xf2",
            "-> #1 (cpu_hotplug_lock){++++}-{0:0}:", *chain[:45],
            "       memory_subsys_offline+0x6b/0x123",
            "-> #0 (kn->active#12){++++}-{0:0}:", *chain[45:],
            "       remove_memory_block_devices+0x77/0x7e",
            " *** DEADLOCK ***",
            "stack backtrace:",
            "Call Trace:",
            " <TASK>", " dump_stack_lvl+0x5d/0x80", " </TASK>"]
        status, counts, results, out = self.summarise(console(dmesg=kernel_log(extra={"ebb:balloon.sh": report})))
        self.assertEqual((status, counts, self.failures(results)), (0, (7, 0, 1), []))
        self.assertIn("KNOWN kernel log (ebb:balloon.sh: WARNING: possible circular locking", out)
        self.assertIn("NOTE: lockdep turns itself off after its first report", out)
        other = [line.replace("try_remove_memory", "ebb_worker") for line in report]
        status, counts, results, out = self.summarise(console(dmesg=kernel_log(extra={"ebb:balloon.sh": other})))
        self.assertEqual((status, counts), (1, (7, 1, 1)))
        self.assertEqual([n for n, _ in self.failures(results)], ["kernel log (ebb:balloon.sh)"])
        self.assertNotIn("KNOWN", out)

    def test_guest_check_knows_the_same_report(self):
        """the guests' own check (lib.sh kernel_quiet_since) passes over the KNOWN lockdep report and fails on any other or a warning after it"""
        mark = "EBB-MARK-0123456789abcdef"
        report = [
            "WARNING: possible circular locking dependency detected",
            "ebb-remove/339 is trying to acquire lock:",
            "ffff888004d4e890 (kn->active#4){++++}-{0:0}, at: __kernfs_remove+0x10a/0x217",
            "but task is already holding lock:",
            "ffffffff818fa570 (mem_hotplug_lock){++++}-{0:0}, at: try_remove_memory+0x4a/0xf2",
            "       memory_subsys_offline+0x6b/0x123",
            "       remove_memory_block_devices+0x8a/0x91",
            "stack backtrace:",
            "Call Trace:",
            " remove_memory_block_devices+0x8a/0x91"]
        stamped = [f"[   66.{n:06d}] {line}" for n, line in enumerate(report)]
        self.assertTrue(guest_quiet_since(mark, ["boot", f"{mark} test", *stamped, "ebb: unloaded"]))
        self.assertFalse(guest_quiet_since(mark, [f"{mark} test", *stamped, "WARNING: CPU: 1 at mm/memory_hotplug.c:12"]))
        other = [line.replace("memory_subsys_offline", "ebb_worker") for line in stamped]
        self.assertFalse(guest_quiet_since(mark, [f"{mark} test", *other]))
        self.assertFalse(guest_quiet_since(mark, ["no mark", *stamped]))

    def test_truncated_dmesg(self):
        """a kernel log dump that lost its start (the buffer wrapped, or a test cleared it) fails"""
        dmesg = kernel_log()
        dmesg = dmesg[dmesg.index(next(l for l in dmesg if "EBB-TEST-END memory-hotplug" in l)):]
        status, counts, results, _ = self.summarise(console(dmesg=dmesg))
        self.assertEqual(status, 1)
        self.assertEqual(counts, (7, 2, 1))
        failures = self.failures(results)
        self.assertEqual(failures[0][0], "kernel log")
        self.assertTrue(failures[0][1].startswith("does not start at boot"), failures[0][1])
        self.assertEqual(failures[1], ("kernel log", "no EBB-TEST-BEGIN mark for memory-hotplug:mem-on-off-test.sh"))

    def test_dump_cut_short(self):
        """a kernel log dump without its end marker fails (the guest died while printing it)"""
        status, counts, results, _ = self.summarise(console(dmesg_end=False))
        self.assertEqual((status, counts), (1, (7, 1, 1)))
        self.assertEqual(self.failures(results), [("kernel log", "dump cut short (no EBB-DMESG-END)")])

    def test_hypervisor_status_after_end(self):
        """a clean log still fails when ebbhv exits non-zero after the end marker (guest crash)"""
        status, counts, results, _ = self.summarise(
            console(), "ebbhv", "--run-status", "2",
            "--run-note", "ebbhv stopped the guest: crash or fatal guest state (run-hv.sh status 2)")
        self.assertEqual((status, counts), (1, (7, 1, 1)))
        self.assertEqual(self.failures(results),
                         [("guest run", "ebbhv stopped the guest: crash or fatal guest state (run-hv.sh status 2)")])


def guest_quiet_since(mark, kernel_log):
    """What tests/selftests/ebb/lib.sh's kernel_quiet_since MARK says of KERNEL_LOG, run
    by bash with busybox's awk (the guest's) where the host has it."""
    lib = open(os.path.join(ROOT, "tests", "selftests", "ebb", "lib.sh")).read()
    functions = [re.search(rf"^{name}\(\) {{\n.*?^}}\n", lib, re.S | re.M).group(0)
                 for name in ("dmesg_since", "kernel_warned_since", "kernel_quiet_since")]
    with tempfile.NamedTemporaryFile("w", suffix=".log") as log:
        log.write("".join(line + "\n" for line in kernel_log))
        log.flush()
        script = "\n".join([
            'if command -v busybox >/dev/null; then awk() { busybox awk "$@"; }; fi',
            f'dmesg() {{ cat "{log.name}"; }}', *functions, f"kernel_quiet_since {mark}"])
        return subprocess.run(["bash", "-c", script], capture_output=True).returncode == 0


def ebb_lines():
    """Runs every case; prints one PASS/FAIL line each (the failures' tracebacks after)."""
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Summary)
    cases = [(t.id(), t.shortDescription() or t.id()) for t in suite]
    result = unittest.TestResult()
    suite.run(result)
    bad = {t.id(): tb for t, tb in result.failures + result.errors}
    for test_id, what in cases:
        label = "FAIL" if test_id in bad else "PASS"
        print(f"{label} host: ktap-summary: {what}")
    for test_id, tb in bad.items():
        print(f"--- {test_id}\n{tb}", file=sys.stderr)
    return 1 if bad or not result.wasSuccessful() or result.testsRun == 0 else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--ebb-lines"]:
        try:
            sys.exit(ebb_lines())
        except Exception:
            traceback.print_exc()
            sys.exit(1)
    unittest.main()
