#!/usr/bin/env python3
"""Host side of the page offline benchmark (scripts/bench-offline.sh runs it).

Waits for the guest's EBB-BENCH-OFFLINE-READY, then over one connection to ebbhv's
control socket: `info`, looks up FRAMES guest frames spread evenly over the guest's
RAM (`p2m`), takes each one's machine frame offline with its own `mem-offline`
request (the guest frame moves to a copy, and ebbhv merges the 2 MiB leaf it split
again), `info` again, and tells the guest to stop (xenstore data/ebb-bench-done).
Then reads the guest's stall figures and memcheck's verdict from the console log.

Reports: the total time of the offlines seen from the host (requests one after the
other, each waiting for its reply), the guest pause per offline and per merge pass
as ebbhv measured them from the TSC (`ctl_p2m_requests_us_*`,
`remerge_passes_us_*`), the longest stall the guest saw against its baseline, the
2 MiB and 4 KiB leaves before and after, and memcheck's mismatches. Writes them to
--json. Exits 1 when a step fails or a page mismatched.
"""

import argparse
import json
import os
import re
import socket
import sys
import time


def log(msg):
    print(f"[bench-offline] {msg}", flush=True)


def fail(msg):
    log(f"failed: {msg}")
    sys.exit(1)


def wait_for(path, pattern, timeout_s, pid):
    """The first console line matching `pattern` (a regex), waiting for it."""
    deadline = time.monotonic() + timeout_s
    rx = re.compile(pattern)
    while time.monotonic() < deadline:
        try:
            with open(path, errors="replace") as f:
                for line in f:
                    m = rx.search(line)
                    if m:
                        return m
        except FileNotFoundError:
            pass
        if pid and not os.path.exists(f"/proc/{pid}"):
            fail(f"the guest run ended before '{pattern}' (see {path})")
        time.sleep(1)
    fail(f"no '{pattern}' in {path} within {timeout_s} s")


class Channel:
    """One connection to the control socket: a request line, its reply line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.settimeout(60)
        self.buf = b""

    def request(self, line):
        self.sock.sendall(line.encode() + b"\n")
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    fail("the hypervisor closed the control channel")
                self.buf += chunk
            reply, self.buf = self.buf.split(b"\n", 1)
            text = reply.decode(errors="replace").strip()
            # Lines that are not replies (noise from before this connection).
            if text.startswith("ok") or text.startswith("error "):
                return text

    def info(self):
        reply = self.request("info")
        if not reply.startswith("ok "):
            fail(f"info: {reply}")
        out = {}
        for token in reply[3:].split():
            key, _, value = token.partition("=")
            if value.isdigit():
                out[key] = int(value)
        return out


def ram_frames(chan, gfns):
    """The machine frame behind each guest frame that is the guest's RAM."""
    found = []
    for gfn in gfns:
        reply = chan.request(f"p2m {gfn} {gfn}")
        m = re.search(r"type=ram,mfn=(0x[0-9a-f]+),leaf=(\w+)", reply)
        if m:
            found.append((gfn, int(m.group(1), 16), m.group(2)))
    return found


def stall(console, phase):
    m = re.search(rf"EBB-BENCH-STALL phase={phase} stallmeter: (.*)", console)
    if not m:
        fail(f"no stall figures for the {phase} phase")
    return {k: int(v) for k, v in (t.split("=") for t in m.group(1).split())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--console", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    wait_for(args.console, r"EBB-BENCH-OFFLINE-READY", 900, args.pid)
    chan = Channel(args.socket)
    before = chan.info()
    # Spread over the guest's RAM above the first 2 MiB, one frame every `stride`.
    top = before["tot_pages"]
    stride = max(1, (top - 512) // args.frames)
    candidates = [512 + i * stride + (i * 7) % stride for i in range(args.frames)]
    frames = ram_frames(chan, candidates)
    log(f"{len(frames)} of {len(candidates)} guest frames (one every {stride}) are RAM; "
        f"{sum(1 for f in frames if f[2] == '2M')} in 2M leaves")
    if not frames:
        fail("no guest frame to offline")

    started = time.monotonic()
    refused = []
    for gfn, mfn, _ in frames:
        reply = chan.request(f"mem-offline {mfn} {mfn}")
        if not reply.startswith("ok ") or "state=offlined" not in reply:
            refused.append((gfn, mfn, reply))
    total_s = time.monotonic() - started
    after = chan.info()
    chan.request("xs-write data/ebb-bench-done 1")
    chan.sock.close()
    if refused:
        fail(f"{len(refused)} offlines not done, the first: {refused[0]}")

    m = wait_for(args.console, r"memcheck: round 1: (\d+) of (\d+) pages mismatch", 900, args.pid)
    mismatched, pages = int(m.group(1)), int(m.group(2))
    with open(args.console, errors="replace") as f:
        console = f.read()
    base, during = stall(console, "baseline"), stall(console, "offline")

    def delta(key):
        return after.get(key, 0) - before.get(key, 0)

    n = len(frames)
    requests, merges = delta("ctl_p2m_requests"), delta("ram_remerged_2m")
    passes = delta("remerge_passes")
    result = {
        "frames_offlined": n,
        "host_total_s": round(total_s, 3),
        "host_per_offline_ms": round(total_s * 1000 / n, 3),
        "offline_requests": requests,
        "offline_pause_us_mean": delta("ctl_p2m_requests_us_total") // max(requests, 1),
        "offline_pause_us_max": after.get("ctl_p2m_requests_us_max", 0),
        "remerged_2m": merges,
        "remerge_passes": passes,
        "remerge_pause_us_per_2m": delta("remerge_passes_us_total") // max(merges, 1),
        "remerge_pause_us_max": after.get("remerge_passes_us_max", 0),
        "guest_pause_total_ms": (delta("ctl_p2m_requests_us_total")
                                 + delta("remerge_passes_us_total")) // 1000,
        "stall_baseline_max_us": base["max_gap_us"],
        "stall_offline_max_us": during["max_gap_us"],
        "stall_baseline_over_1ms": base["gaps_1000us"],
        "stall_offline_over_1ms": during["gaps_1000us"],
        "stall_offline_over_1ms_total_ms": during["gaps_1000us_total_us"] // 1000,
        "offline_phase_s": round(during["measured_us"] / 1e6, 1),
        "baseline_phase_s": round(base["measured_us"] / 1e6, 1),
        "leaves_2m_before": before.get("ram_leaves_2m", 0),
        "leaves_2m_after": after.get("ram_leaves_2m", 0),
        "leaves_4k_before": before.get("ram_leaves_4k", 0),
        "leaves_4k_after": after.get("ram_leaves_4k", 0),
        "heap_offlined_after": after.get("heap_offlined", 0),
        "heap_free_before": before.get("heap_free", 0),
        "heap_free_after": after.get("heap_free", 0),
        "memcheck_pages": pages,
        "memcheck_mismatched": mismatched,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    rows = [
        ("guest frames offlined (in use, scattered)", f"{n}"),
        ("total time, host side (one request after the other)", f"{total_s:.1f} s ({total_s * 1000 / n:.1f} ms each)"),
        ("guest pause per offline (ebbhv, TSC): mean / max", f"{result['offline_pause_us_mean']} / {result['offline_pause_us_max']} us"),
        ("2 MiB leaves merged again", f"{merges} in {passes} passes"),
        ("guest pause per 2 MiB merge (ebbhv, TSC): mean / longest pass", f"{result['remerge_pause_us_per_2m']} / {result['remerge_pause_us_max']} us"),
        ("guest paused in all", f"{result['guest_pause_total_ms']} ms"),
        ("longest stall the guest saw: baseline / offline", f"{base['max_gap_us']} / {during['max_gap_us']} us"),
        ("stalls over 1 ms: baseline / offline", f"{base['gaps_1000us']} in {result['baseline_phase_s']} s / {during['gaps_1000us']} in {result['offline_phase_s']} s ({result['stall_offline_over_1ms_total_ms']} ms)"),
        ("2 MiB leaves before / after", f"{result['leaves_2m_before']} / {result['leaves_2m_after']}"),
        ("4 KiB leaves before / after", f"{result['leaves_4k_before']} / {result['leaves_4k_after']}"),
        ("memcheck", f"{mismatched} of {pages} pages mismatched"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    if mismatched:
        fail(f"memcheck found {mismatched} mismatched pages")


if __name__ == "__main__":
    main()
