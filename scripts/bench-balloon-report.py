#!/usr/bin/env python3
"""Reads the console logs of the balloon benchmark's guest runs (ebb.ko and the C
xen-balloon driver, tests/bench/balloon-bench.sh: under ebbhv, and optionally in
domUs of a real Xen), checks that every phase completed, prints a table of ebb / C
ratios per hypervisor and writes the results as JSON and the memory of the ebbhv
guests over time as SVG. Each move (out, in, grow, shrink) is measured in several
rounds: the table shows the median and, after it, the range (min-max).

Counts of hypercalls and VM exits are the hypervisor's own (`ebbctl info`, read before
and after each phase; on Xen dom0 counts the domain's hypercalls from Xen's trace
buffers and there are no exit counts). Reading them costs the guest hypercalls and exits too: the
median of three empty phases ("null") is taken off every phase. CPU time is the
guest's busy time (/proc/stat) above the rate measured while idle ("idle"), which
includes the benchmark's own 10 Hz sampler. Exits and all-hypercall counts grow with
time as well as with work (timer ticks), so they are only comparable next to the
wall time.

Exit status: 0, or 1 with a message naming what is missing or failed.
"""

import argparse
import json
import re
import statistics
import sys

GIB_KB = 1 << 20
LINE = re.compile(r"EBB-BENCH(-[A-Z]+)? ?(.*)$")
# What the table compares, in order.
MOVES = ["out", "in", "grow", "shrink"]
DRIVERS = [("ebb", "ebb.ko"), ("c", "C xen-balloon")]


class BenchError(Exception):
    pass


def fields(text):
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


def number(value):
    try:
        return int(value)
    except ValueError:
        return value


def parse(path, want_driver):
    """One guest run: its info, phases (each move a list of rounds), leftover report,
    marks and samples."""
    run = {"phases": {}, "rounds": {m: [] for m in MOVES}, "null": [], "marks": [], "samples": [],
           "info": None}
    done = failed = None
    dmesg, in_dmesg = [], False
    try:
        lines = open(path, errors="replace").read().splitlines()
    except OSError as e:
        raise BenchError(f"{want_driver}: no console log ({e})")
    for raw in lines:
        line = raw.removeprefix("[guest] ").rstrip("\r")
        if line == "EBB-DMESG-BEGIN":
            in_dmesg = True
            continue
        if line == "EBB-DMESG-END":
            in_dmesg = False
            continue
        if in_dmesg:
            dmesg.append(line)
            continue
        m = LINE.match(line)
        if not m:
            continue
        kind, rest = m[1] or "", m[2]
        f = {k: number(v) for k, v in fields(rest).items()}
        if kind == "-INFO":
            run["info"] = f
        elif kind == "" and "phase" in f:
            if f["phase"] == "null":
                run["null"].append(f)
            elif f["phase"] in MOVES:
                run["rounds"][f["phase"]].append(f)
            else:
                run["phases"][f["phase"]] = f
        elif kind == "-MARK":
            run["marks"].append([f["t_ms"], f["phase"]])
        elif kind == "-SAMPLE":
            run["samples"].append([f["t_ms"], f["current_kb"], f["memtotal_kb"]])
        elif kind == "-FAIL":
            failed = rest
        elif kind == "-DONE":
            done = f
    if failed:
        raise BenchError(f"{want_driver}: the guest's benchmark failed: {failed} (see {path})")
    if not done:
        raise BenchError(f"{want_driver}: the guest's benchmark did not finish (see {path})")
    if run["info"].get("driver") != want_driver:
        raise BenchError(f"{path}: expected driver {want_driver}, the guest ran {run['info'].get('driver')}")
    missing = [p for p in MOVES if not run["rounds"][p]]
    missing += [p for p in ["leftover", "idle", "stuck"] if p not in run["phases"]]
    if missing or len(run["null"]) < 1:
        raise BenchError(f"{want_driver}: phases missing from {path}: {' '.join(missing) or 'null'}")
    bad = [l for l in dmesg if re.search(r"WARNING:|BUG:|Oops|Call Trace", l)]
    if bad:
        raise BenchError(f"{want_driver}: kernel warning or oops in the guest: {bad[0]}")
    return run


def counted(values):
    """The values when the hypervisor counted them (Xen counts no exits: "-")."""
    return all(isinstance(v, int) for v in values)


def net(value, base):
    return max(value - base, 0) if counted([value, base]) else None


def derive(run):
    """Adds net figures to every phase: the measurement's cost taken off, CPU above idle."""
    null = {k: statistics.median(n[k] for n in run["null"]) if counted(n[k] for n in run["null"]) else None
            for k in ("hypercalls", "exits")}
    idle = run["phases"]["idle"]
    idle_cpu_rate = idle["cpu_ms"] / max(idle["wall_ms"], 1)
    idle_rate = {k: net(idle[k], null[k]) / max(idle["wall_ms"], 1) if net(idle[k], null[k]) is not None
                 else None for k in ("hypercalls", "exits")}
    phases = list(run["phases"].values()) + [p for rounds in run["rounds"].values() for p in rounds]
    for p in phases:
        if "wall_ms" not in p:
            continue
        p["hypercalls_net"] = net(p["hypercalls"], null["hypercalls"])
        p["exits_net"] = net(p["exits"], null["exits"])
        p["cpu_net_ms"] = max(round(p["cpu_ms"] - idle_cpu_rate * p["wall_ms"]), 0)
        if p.get("moved_kb"):
            p["hc_reservation_per_gib"] = p["hc_reservation"] * GIB_KB / p["moved_kb"]
    stuck = run["phases"]["stuck"]
    # Over a held target the interesting part is what the driver adds to an idle guest.
    for k in ("hypercalls", "exits"):
        over = None
        if stuck[f"{k}_net"] is not None and idle_rate[k] is not None:
            over = max(round(stuck[f"{k}_net"] - idle_rate[k] * stuck["wall_ms"]), 0)
        stuck[f"{k}_over_idle"] = over
    # The scale that the figures above idle are noise against.
    stuck["idle_hypercalls"] = idle["hypercalls_net"]
    stuck["idle_cpu_ms"] = idle["cpu_ms"]
    run["measurement_cost"] = null


def ratio(a, b):
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return None
    return a / b


def fmt(v, digits=0):
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        # A move's rounds: the median, then the range.
        if len(v) == 1:
            return fmt(v[0], digits)
        if any(x is None for x in v):
            return "-"
        return f"{fmt(statistics.median(v), digits)} ({fmt(min(v), digits)}-{fmt(max(v), digits)})"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if digits else f"{v:.0f}"
    return str(v)


def median(v):
    if isinstance(v, (list, tuple)):
        return statistics.median(v) if v and all(x is not None for x in v) else None
    return v


def fmt_ratio(r):
    if r is None:
        return "-"
    return f"{r:.3f}" if r < 0.1 else f"{r:.2f}"


def driver_count(p):
    value = p.get("driver_hc")
    return value if isinstance(value, int) else None


def table(runs, where):
    """Rows of (phase, metric, ebb, C, ratio) and the text table. A move's values are
    lists (one per round); the ratio is that of the medians. Under ebbhv the
    reservation hypercalls are the hypervisor's count by sub-op; on Xen the trace gives
    every entry into memory_op, continuations included, and ebb.ko's own count says
    how many it issued (the C driver keeps none)."""
    if where == "ebbhv":
        reservation = [
            ("reservation hypercalls", lambda p: p["hc_reservation"], 0),
            ("reservation hypercalls / GiB", lambda p: p.get("hc_reservation_per_gib"), 1),
        ]
        exits = [("VM exits", lambda p: p["exits_net"], 0)]
        exits_idle = [("VM exits above idle", lambda p: p["exits_over_idle"], 0)]
    else:
        reservation = [
            ("memory_op entries into Xen", lambda p: p["hc_reservation"], 0),
            ("memory_op entries into Xen / GiB", lambda p: p.get("hc_reservation_per_gib"), 1),
            ("reservation hypercalls issued (ebb.ko's count)", driver_count, 0),
        ]
        exits = exits_idle = []
    metrics = [("time (s)", lambda p: p["wall_ms"] / 1000, 1), *reservation,
               ("all hypercalls", lambda p: p["hypercalls_net"], 0), *exits,
               ("guest CPU above idle (ms)", lambda p: p["cpu_net_ms"], 0)]
    stuck_metrics = [
        reservation[0],
        ("hypercalls above idle", lambda p: p["hypercalls_over_idle"], 0),
        *exits_idle,
        ("guest CPU above idle (ms)", lambda p: p["cpu_net_ms"], 0),
        ("idle baseline: all hypercalls", lambda p: p["idle_hypercalls"], 0),
        ("idle baseline: guest CPU (ms)", lambda p: p["idle_cpu_ms"], 0),
    ]
    left_metrics = [
        ("memory blocks added", lambda p: p["blocks_added"], 0),
        ("memory blocks left online", lambda p: p["blocks_left"], 0),
        ("memmap left (KiB)", lambda p: p["memmap_kb"], 0),
        ("MemTotal after - before (KiB)", lambda p: p["memtotal_after_kb"] - p["memtotal_before_kb"], 0),
    ]
    hold = runs["ebb"]["info"]["hold_s"]
    groups = [(ph, metrics) for ph in MOVES]
    groups += [("stuck", stuck_metrics), ("leftover", left_metrics)]
    names = {
        "out": "balloon out 512 MiB",
        "in": "balloon in 512 MiB",
        "grow": "grow 512 MiB (hotplug)",
        "shrink": "shrink 512 MiB",
        "stuck": f"unreachable target, {hold} s",
        "leftover": "after grow + shrink",
    }
    rows = []
    def values(run, phase, get):
        if phase in MOVES:
            return [get(p) for p in run["rounds"][phase]]
        return get(run["phases"][phase])

    for phase, ms in groups:
        for metric, get, digits in ms:
            e = values(runs["ebb"], phase, get)
            c = values(runs["c"], phase, get)
            rows.append({"phase": names[phase], "metric": metric, "ebb": e, "c": c,
                         "ratio": ratio(median(e), median(c)), "digits": digits})
    head = ("phase", "metric", "ebb.ko", "C driver", "ebb / C")
    cells = [head] + [(r["phase"], r["metric"], fmt(r["ebb"], r["digits"]), fmt(r["c"], r["digits"]),
                       fmt_ratio(r["ratio"])) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    text = []
    for n, c in enumerate(cells):
        text.append("| " + " | ".join(v.ljust(widths[i]) if i < 2 else v.rjust(widths[i])
                                      for i, v in enumerate(c)) + " |")
        if n == 0:
            text.append("|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":"
                                       for i, w in enumerate(widths)) + "|")
    for r in rows:
        del r["digits"]
    return rows, "\n".join(text)


def svg(runs, path):
    """current_kb (solid) and MemTotal (dashed) over time for both guests."""
    w, h, left, right, top, bottom = 900, 420, 70, 20, 40, 70
    colours = {"ebb": "#1f77b4", "c": "#d62728"}
    series = {}
    for d, run in runs.items():
        # Time from the first measured phase, so that both runs line up at its start.
        t0 = next(t for t, ph in run["marks"] if ph == "out")
        series[d] = [((t - t0) / 1000, cur / 1024, tot / 1024) for t, cur, tot in run["samples"] if t >= t0]
    tmax = max(s[-1][0] for s in series.values() if s) or 1
    vmax = max(max(p[1], p[2]) for s in series.values() for p in s)
    # At least a quarter step of room above the highest point.
    vmax = int(vmax / 256 + 1.25) * 256

    def x(t):
        return left + (w - left - right) * t / tmax

    def y(v):
        return top + (h - top - bottom) * (1 - v / vmax)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">'
           'Guest memory during the balloon benchmark (solid: info/current_kb, dashed: MemTotal)</text>']
    for v in range(0, vmax + 1, 256):
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    step = max(10, int(tmax / 10 / 10 + 1) * 10)
    for t in range(0, int(tmax) + 1, step):
        out.append(f'<text x="{x(t):.1f}" y="{h - bottom + 16}" text-anchor="middle">{t}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - bottom + 32}" text-anchor="middle">'
               'seconds since the start of "balloon out"</text>')
    out.append(f'<text x="16" y="{(top + h - bottom) / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {(top + h - bottom) / 2})">MiB</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" '
               'fill="none" stroke="black"/>')
    for n, (d, label) in enumerate(DRIVERS):
        pts = series[d]
        if not pts:
            continue
        # Each sample holds until the next one: draw steps.
        cur, tot = [], []
        for i, (t, c, m) in enumerate(pts):
            if i:
                cur.append(f"{x(t):.1f},{y(pts[i - 1][1]):.1f}")
                tot.append(f"{x(t):.1f},{y(pts[i - 1][2]):.1f}")
            cur.append(f"{x(t):.1f},{y(c):.1f}")
            tot.append(f"{x(t):.1f},{y(m):.1f}")
        out.append(f'<polyline fill="none" stroke="{colours[d]}" stroke-width="1.5" points="{" ".join(cur)}"/>')
        out.append(f'<polyline fill="none" stroke="{colours[d]}" stroke-dasharray="4 3" points="{" ".join(tot)}"/>')
        t0 = next(t for t, ph in runs[d]["marks"] if ph == "out")
        lx = left + 10 + 200 * n
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{h - 22}" y2="{h - 22}" stroke="{colours[d]}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 30}" y="{h - 18}">{label}</text>')
        # Phase names run up the start lines: ebb.ko's from the top, the C driver's
        # from the bottom, so that neighbours do not overlap.
        for t, ph in runs[d]["marks"]:
            if t >= t0 and ph != "null":
                tx = x((t - t0) / 1000)
                out.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{h - bottom}" '
                           f'stroke="{colours[d]}" stroke-opacity="0.3"/>')
                ty, anchor = (top + 4, "end") if n == 0 else (h - bottom - 4, "start")
                out.append(f'<text x="{tx - 3:.1f}" y="{ty}" fill="{colours[d]}" font-size="10" '
                           f'text-anchor="{anchor}" transform="rotate(-90 {tx - 3:.1f} {ty})">{ph}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


# The C driver moves at most this many frames per reservation hypercall (its
# frame_list is one page of unsigned longs), so it issues at least pages / 512 calls.
C_FRAMES_PER_CALL = 512


def verdict(runs, where):
    """Issue 6's target, on the worse of the two directions, and whether ebb.ko is
    faster in every move (medians of the rounds). Under ebbhv both counts are the
    hypervisor's; on Xen ebb.ko's is its own count of the calls it issued and the C
    driver's the fewest its code can make (one per 512 frames)."""
    def med(d, phase, key):
        return statistics.median(p[key] for p in runs[d]["rounds"][phase])

    def per_gib(d, phase):
        if where == "ebbhv":
            return med(d, phase, "hc_reservation_per_gib")
        if d == "c":
            return GIB_KB / 4 / C_FRAMES_PER_CALL
        return statistics.median(p["driver_hc"] * GIB_KB / p["moved_kb"] for p in runs[d]["rounds"][phase])

    fewer = min(per_gib("c", p) / max(per_gib("ebb", p), 1e-9) for p in ("out", "in"))
    slower = [p for p in MOVES if med("ebb", p, "wall_ms") >= med("c", p, "wall_ms")]
    basis = "" if where == "ebbhv" else " (ebb.ko's count; the C driver's by its code)"
    print(f"{where}: balloon out/in: {fewer:.0f}x fewer reservation hypercalls per GiB than the C driver"
          f"{basis} (target 100x: {'met' if fewer >= 100 else 'NOT met'}); wall time "
          + ("faster in every move" if not slower else f"NOT faster in: {' '.join(slower)}"))
    return {"fewer_hypercalls_per_gib_factor": fewer, "target_100x_fewer_met": fewer >= 100,
            "faster_in_every_move": not slower, "not_faster_in": slower}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ebb", required=True, help="console log of the ebb.ko run under ebbhv")
    ap.add_argument("--c", required=True, help="console log of the C driver's run under ebbhv")
    ap.add_argument("--xen-ebb", help="console log of the ebb.ko run in a real Xen domU")
    ap.add_argument("--xen-c", help="console log of the C driver's run in a real Xen domU")
    ap.add_argument("--json", required=True)
    ap.add_argument("--svg", required=True)
    ap.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                    help="recorded in the JSON as is")
    args = ap.parse_args()
    if bool(args.xen_ebb) != bool(args.xen_c):
        ap.error("--xen-ebb and --xen-c go together")
    beds = [("ebbhv", args.ebb, args.c)]
    if args.xen_ebb:
        beds.append(("xen", args.xen_ebb, args.xen_c))
    result = {"meta": dict(kv.split("=", 1) for kv in args.meta)}
    for where, ebb_log, c_log in beds:
        try:
            runs = {"ebb": parse(ebb_log, "ebb"), "c": parse(c_log, "c")}
        except BenchError as e:
            print(f"[bench-balloon] error ({where}): {e}", file=sys.stderr)
            return 1
        for run in runs.values():
            derive(run)
        rows, text = table(runs, where)
        print(f"\n{'under ebbhv' if where == 'ebbhv' else 'in a real Xen 4.17 PVH domU (under QEMU)'}:")
        print(text)
        result[where] = {"verdict": verdict(runs, where), "table": rows, "runs": runs}
        if where == "ebbhv":
            svg(runs, args.svg)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
