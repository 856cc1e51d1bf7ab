#!/usr/bin/env bash
# Runs one kselftest under ebbhv that must end its run in a domain crash, and checks
# that it did, for the reason given: the test's results printed before the crash all
# passed, ebbhv reported `[hv] domain 1 crashed: <reason>` with a reason matching
# REGEX (an extended regular expression), and the run ended as a guest crash
# (run-hv.sh status 2). The guest gets `ebb.expect_crash=1` on its command line; such
# a test skips without it, so the ordinary runs never crash.
#
# Usage: expect-crash.sh COLLECTION:TEST REGEX
# Environment: EBB_RESULTS (results/<time>-crash), as for run-guest.sh.
# Prints PASS/FAIL lines and a count line as run-guest.sh does; exit status 0 only if
# everything held.
set -euo pipefail
EBB_LOG_TAG=crash
source "$(dirname "$0")/lib.sh"

[ $# = 2 ] || die "usage: expect-crash.sh COLLECTION:TEST REGEX"
test=$1 regex=$2
results=${EBB_RESULTS:-$EBB_ROOT/results/$(date +%Y%m%d-%H%M%S)-crash}
mkdir -p "$results"
# The run fails in run-guest.sh's eyes (no end marker, status 2): judged here.
EBB_RESULTS=$results EBB_GUEST_CMDLINE=ebb.expect_crash=1 EBB_TIMEOUT=${EBB_TIMEOUT:-600} \
    "$EBB_ROOT/scripts/run-guest.sh" test "$test" >"$results/run-guest.log" 2>&1 || true

python3 - "$results" "$test" "$regex" <<'PY'
import json, re, sys
results, test, regex = sys.argv[1:]
log = open(f"{results}/console.log", errors="replace").read().splitlines()
summary = json.load(open(f"{results}/summary.json"))
checks = []
# The test's own KTAP lines, nested behind "# ": the runner never printed the test's
# overall result, so ktap-summary.py does not count them.
subtest = re.compile(r"^\[guest\] # (ok|not ok) \d+ (.*)$")
ran = [m.groups() for m in map(subtest.match, log) if m]
for outcome, description in ran:
    print(f"  {test}: {outcome} {description}")
checks.append((f"{test}: its results before the crash all passed ({len(ran)})",
               bool(ran) and all(outcome == "ok" for outcome, _ in ran)))
crash = next((l for l in log if l.startswith("[hv] domain 1 crashed: ")), "")
reason = crash[len("[hv] domain 1 crashed: "):]
checks.append((f"{test}: ebbhv crashed the domain for: {reason or '(no crash reported)'}",
               bool(re.search(regex, reason))))
checks.append((f"{test}: the run ended as a guest crash (run-hv.sh status 2)",
               summary["run_status"] == 2))
for name, ok in checks:
    print(("PASS " if ok else "FAIL ") + name)
failed = sum(1 for _, ok in checks if not ok)
if failed:
    print(f"--- last lines of {results}/console.log ---")
    print("\n".join(log[-25:]))
print(f"crash run ({test}): {len(checks) - failed} passed, {failed} failed, 0 skipped")
json.dump({"pass": len(checks) - failed, "fail": failed, "skip": 0,
           "results": [dict(outcome="pass" if ok else "fail", name=name, note="") for name, ok in checks]},
          open(f"{results}/crash-summary.json", "w"))
sys.exit(1 if failed else 0)
PY
