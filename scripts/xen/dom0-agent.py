#!/usr/bin/env python3
"""The host agent of a real-Xen run, inside dom0 (scripts/run-xen.sh puts it there).

Follows the test domain's console as xenconsoled logs it (--log=guest), copies every
line to stdout (dom0's console, which reaches the host) behind "[guest] ", and carries
out the guest's requests for host-side actions the way scripts/host-agent.py does
under ebbhv, with Xen's own tools instead of ebbctl. A guest asks with a console line
    EBB-HOST-REQUEST <id> <ebbctl verb> [args...]
and finds what the verb printed in its xenstore key `data/ebb-host/<id>-output` and
its exit status in `data/ebb-host/<id>` (tests/selftests/ebb/lib.sh, host_request).

Verbs, as ebbctl names them:
    ping                        answers 0
    info [--raw]                tot_pages, max_pages (xentop), target_kib and
                                static_max_kib (xenstore), as ebbctl prints them; when the
                                agent counts hypercalls (--count-hypercalls: the
                                benchmark), also the domain's hypercalls so far:
                                hypercalls, hc_<number>, trace_lost (HypercallCounter)
    xenstore-read|-write|-ls|-rm  xenstore-read, -write, -list, -rm; relative paths
                                are under the domain's /local/domain/<domid>
    mem-set SIZE, mem-max SIZE  xl mem-set, xl mem-max (SIZE as ebbctl takes it; a bad
                                one refused with ebbctl's and ebbhv's status and words)
    shutdown [poweroff|reboot] [--force]   xl shutdown, xl reboot, xl destroy
Anything else (fail-next, raw: ebbhv's own) gets status UNSUPPORTED (95, EOPNOTSUPP)
and a message saying so, so that a test can skip with a reason.

The agent ends once the domain is gone and its console log is read to the end.
"""

import argparse
import collections
import os
import re
import shlex
import struct
import subprocess
import sys
import threading
import time

REQUEST = re.compile(r"EBB-HOST-REQUEST (\w{1,32}) (.+)$")
OUTPUT_MAX = 2048
UNSUPPORTED = 95


def run(argv, timeout=60):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return done.returncode, (done.stdout + done.stderr).strip()
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} timed out"
    except OSError as e:
        return 127, f"{argv[0]}: {e}"


def parse_kib(text):
    """A size as ebbctl takes it (k, m, g, t suffix; a bare number is MiB), in KiB."""
    shifts = {"k": 0, "m": 10, "g": 20, "t": 30}
    digits, shift = text, 10
    if text and text[-1].lower() in shifts:
        digits, shift = text[:-1], shifts[text[-1].lower()]
    if not digits.isdigit() or not digits.isascii():
        return None
    kib = int(digits) << shift
    return kib if kib < 1 << 64 else None


# Xen's trace records (public/trace.h): a 32-bit header (event in bits 0-27, the
# number of 32-bit data words in bits 28-30, bit 31 set when a 64-bit TSC follows),
# then the data. xentrace's own records (CPU changes) have the same form.
TRC_LOST_RECORDS = 0x0001F001
TRC_HVM_HANDLER = 0x00082000
TRC_HVM_VMMCALL = TRC_HVM_HANDLER + 0x12


class HypercallCounter:
    """Counts the hypercalls of HVM-container domains by number, from Xen's trace
    buffers: a PVH guest's hypercall is a VMMCALL exit, which Xen traces with the
    hypercall number (TRC_HVM_VMMCALL, data: eax), once per entry into Xen, so a long
    memory_op that Xen preempts and continues counts once per continuation. dom0 is PV
    (its hypercalls are no VMMCALL exits) and the test domain is the only PVH or HVM
    one, so every count is the test domain's. Only the HVM handler events are traced
    (xentrace -e), and records Xen could not store are counted (trace_lost), never
    silently missing.

    xentrace copies the trace into a file (in dom0's tmpfs: a benchmark run's HVM
    handler events are a few tens of MiB; through a pipe xentrace wrote nothing),
    which is parsed only when counts are asked for, between the benchmark's phases:
    dom0 does not compete for the CPUs while a phase is measured."""

    def __init__(self, path="/run/ebb/trace.bin"):
        self.counts = collections.Counter()
        self.lost = 0
        self.pending = b""
        self.path = path
        self.file = None
        # -S: 256 pages of trace buffer per CPU; -s: poll every 20 ms, so that a count
        # taken 100 ms after the guest asked includes everything before its request.
        self.proc = subprocess.Popen(
            ["xentrace", "-D", "-e", hex(TRC_HVM_HANDLER), "-S", "256", "-s", "20", path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        threading.Thread(target=self._say_errors, daemon=True).start()

    def _say_errors(self):
        for line in self.proc.stderr:
            sys.stdout.write(f"[host] xentrace: {line.decode(errors='replace').rstrip()}\n")
            sys.stdout.flush()

    def _consume(self):
        """Counts every complete record written since the last call."""
        if self.file is None:
            if not os.path.exists(self.path):
                return
            self.file = open(self.path, "rb")
        data = self.pending + self.file.read()
        at = 0
        while at + 4 <= len(data):
            (header,) = struct.unpack_from("<I", data, at)
            event, words = header & 0x0FFFFFFF, (header >> 28) & 7
            size = 4 + (8 if header >> 31 else 0) + 4 * words
            if at + size > len(data):
                break
            if words and event in (TRC_HVM_VMMCALL, TRC_LOST_RECORDS):
                (first,) = struct.unpack_from("<I", data, at + size - 4 * words)
                if event == TRC_HVM_VMMCALL:
                    self.counts[first] += 1
                else:
                    self.lost += first
            at += size
        self.pending = data[at:]

    def snapshot(self):
        """[(key, value)] of the counts so far, or None with the reason when tracing
        does not work."""
        time.sleep(0.1)
        if self.proc.poll() is not None:
            return None, f"xentrace ended (status {self.proc.returncode})"
        try:
            self._consume()
        except OSError as e:
            return None, f"cannot read the trace: {e}"
        fields = [("hypercalls", sum(self.counts.values())), ("trace_lost", self.lost)]
        fields += [(f"hc_{nr}", n) for nr, n in sorted(self.counts.items())]
        return fields, None


class Domain:
    def __init__(self, name):
        self.name = name
        self._domid = None

    def domid(self):
        if self._domid is None:
            status, out = run(["xl", "domid", self.name])
            if status == 0 and out.strip().isdigit():
                self._domid = int(out.strip())
        return self._domid

    def alive(self):
        """False once the domain is gone: three looks a second apart agree, since a
        look can fail while the toolstack is busy with the domain."""
        for attempt in range(3):
            if attempt:
                time.sleep(1)
            status, out = run(["xl", "domid", self.name])
            if status == 0:
                return True
        sys.stdout.write(f"[host] domain {self.name} is gone ({out})\n")
        return False

    def path(self, p):
        return p if p.startswith("/") else f"/local/domain/{self.domid()}/{p}"

    def pages(self):
        """(tot_pages, max_pages) from xentop's MEM(k) and MAXMEM(k) columns."""
        status, out = run(["xentop", "-b", "-i", "1"])
        if status != 0:
            return None
        lines = [line.split() for line in out.splitlines() if line.strip()]
        header = next((fields for fields in lines if "MEM(k)" in fields), None)
        for fields in lines:
            if header and fields and fields[0] == self.name:
                mem = fields[header.index("MEM(k)")]
                maxmem = fields[header.index("MAXMEM(k)")]
                max_pages = int(maxmem) // 4 if maxmem.isdigit() else 0
                return int(mem) // 4, max_pages
        return None

    def xs_read(self, p):
        status, out = run(["xenstore-read", self.path(p)])
        return out if status == 0 else ""


def carry_out(dom, argv, counter):
    """Runs one request; returns (status, output, what was run)."""
    verb, args = argv[0], argv[1:]
    if verb == "ping" and not args:
        return 0, "pong (xl, Xen)", "ping"
    if verb == "info" and all(a == "--raw" for a in args) and len(args) <= 1:
        pages = dom.pages()
        if dom.domid() is None or pages is None:
            return 1, f"no domain {dom.name}", "xentop"
        fields = [("domid", dom.domid()), ("tot_pages", pages[0]), ("max_pages", pages[1]),
                  ("target_kib", dom.xs_read("memory/target") or 0),
                  ("static_max_kib", dom.xs_read("memory/static-max") or 0),
                  ("platform", "xen")]
        if counter is not None:
            counts, error = counter.snapshot()
            if counts is None:
                return 1, f"no hypercall counts: {error}", "xentrace"
            fields += counts
        if args:
            return 0, "ok " + " ".join(f"{k}={v}" for k, v in fields), "xentop + xenstore"
        return 0, "\n".join(f"{k} {v}" for k, v in fields), "xentop + xenstore"
    tools = {"xenstore-read": ("xenstore-read", 1), "xenstore-write": ("xenstore-write", 2),
             "xenstore-ls": ("xenstore-list", 1), "xenstore-rm": ("xenstore-rm", 1)}
    if verb in tools and len(args) == tools[verb][1]:
        # "--": a value such as "-1" is data, not an option.
        cmd = [tools[verb][0], "--", dom.path(args[0]), *args[1:]]
        return (*run(cmd), " ".join(cmd))
    if verb in ("mem-set", "mem-max") and len(args) == 1:
        # Refused as ebbctl (status 2) and ebbhv (status 1) refuse them.
        kib = parse_kib(args[0])
        if kib is None:
            return 2, f"bad size {args[0]!r} (e.g. 512, 512m, 524288k, 1g) (see ebbctl --help)", verb
        if kib == 0 or kib % 4:
            what = "target" if verb == "mem-set" else "maximum"
            return 1, f"hypervisor error EINVAL: {what} must be a non-zero multiple of 4 KiB", verb
        cmd = ["xl", verb, dom.name, f"{kib}k"]
        return (*run(cmd), " ".join(cmd))
    if verb == "shutdown" and set(args) <= {"poweroff", "reboot", "--force"}:
        if "--force" in args:
            cmd = ["xl", "destroy", dom.name]
        else:
            cmd = ["xl", "reboot" if "reboot" in args else "shutdown", dom.name]
        return (*run(cmd), " ".join(cmd))
    if verb in ("fail-next", "raw"):
        return UNSUPPORTED, f"unsupported on Xen: {verb} is ebbhv's own", "-"
    return 2, f"unknown request {' '.join(argv)!r}", "-"


def follow(path, dom, idle_check=2.0, appear=60):
    """Yields the lines of a growing file until the domain is gone and the file is
    read to the end (or the domain never came, within `appear` seconds)."""
    waited = 0.0
    while not os.path.exists(path):
        if waited >= appear or (waited >= 1 and not dom.alive()):
            sys.stdout.write(f"[host] no console log {path} of a domain {dom.name}\n")
            return
        time.sleep(0.2)
        waited += 0.2
    with open(path, "rb") as f:
        pending = b""
        idle = 0.0
        while True:
            chunk = f.readline()
            if chunk:
                idle = 0.0
                pending += chunk
                if pending.endswith(b"\n"):
                    yield pending.decode("utf-8", "replace").rstrip("\r\n").replace("\r", "")
                    pending = b""
                continue
            time.sleep(0.1)
            idle += 0.1
            if idle >= idle_check:
                idle = 0.0
                if not dom.alive():
                    rest = f.read()
                    for line in (pending + rest).decode("utf-8", "replace").splitlines():
                        yield line.rstrip("\r")
                    return


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", required=True, help="the domain's name")
    ap.add_argument("--log", required=True, help="xenconsoled's log of its console")
    ap.add_argument("--count-hypercalls", action="store_true",
                    help="trace the domain's hypercalls (xentrace) for info --count-hypercalls")
    args = ap.parse_args()
    dom = Domain(args.domain)
    counter = HypercallCounter() if args.count_hypercalls else None

    def say(text):
        for line in text.splitlines() or [""]:
            sys.stdout.write(f"[host] {line}\n")
        sys.stdout.flush()

    for line in follow(args.log, dom):
        sys.stdout.write(f"[guest] {line}\n")
        sys.stdout.flush()
        m = REQUEST.search(line)
        if not m:
            continue
        req_id, command = m[1], m[2]
        try:
            argv = shlex.split(command)
        except ValueError as e:
            say(f"request {req_id}: unparsable ({e})")
            argv = []
        status, output, ran = carry_out(dom, argv, counter) if argv else (2, "", "-")
        say(f"request {req_id}: {command} -> {status} ({ran})")
        if output:
            say(output)
        # The output first: once the status is there, the guest reads both.
        base = dom.path(f"data/ebb-host/{req_id}")
        run(["xenstore-write", f"{base}-output", output[:OUTPUT_MAX] or "-"])
        reply, text = run(["xenstore-write", base, str(status)])
        if reply != 0:
            say(f"request {req_id}: could not reply through xenstore: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
