#!/usr/bin/env python3
"""Copies a guest run's console (stdin) to a log and carries out the guest's requests
for host-side actions, so that a kselftest can have the host change the domain (for
example `ebbctl mem-set`) at a point of its choosing.

A guest asks with a console line
    EBB-HOST-REQUEST <id> <ebbctl verb> [args...]
The agent runs `ebbctl <verb> [args...]` (nothing but ebbctl, with the arguments
split like a shell would, never through a shell), then writes what it printed to the
guest's xenstore key `data/ebb-host/<id>-output` and its exit status to
`data/ebb-host/<id>`, where the guest waits for it (the `xenstore wait` tool). The
log also gets both, behind `[host]`.

When ebbhv reports that the domain crashed (`[hv] domain N crashed: REASON`), the
agent asks `ebbctl info` (whose `state` and `reason` go to the log, showing that
ebbhv still answers) and then destroys the domain with `ebbctl shutdown --force`,
which ends the run as a guest crash (run-hv.sh status 2) at once instead of after
ebbhv's own grace period.
"""

import argparse
import collections
import os
import re
import shlex
import subprocess
import sys

REQUEST = re.compile(r"EBB-HOST-REQUEST (\w{1,32}) (.+)$")
CRASHED = re.compile(r"\[hv\] domain \d+ crashed: ")
# What of ebbctl's output the guest can read back (a xenstore value is at most 4 KiB).
OUTPUT_MAX = 4000
# Replies kept in the guest's xenstore: older ones are removed, so that they do not
# count against the guest's node and byte quotas (hostile-store.sh fills them). A
# guest reads its reply within moments; requests from parallel threads (smp.sh) are
# far fewer than this apart.
REPLIES_KEPT = 16


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ebbctl", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--echo", action="store_true", help="also copy the console to stdout")
    args = ap.parse_args()
    env = dict(os.environ, EBBCTL_SOCKET=args.socket)

    def ebbctl(argv):
        try:
            done = subprocess.run([args.ebbctl, *argv], env=env, capture_output=True,
                                  text=True, timeout=60)
            return done.returncode, (done.stdout + done.stderr).strip()
        except subprocess.TimeoutExpired:
            return 124, "ebbctl timed out"

    with open(args.log, "w") as log:
        def note(text):
            for line in text.splitlines() or [""]:
                log.write(f"[host] {line}\n")
                if args.echo:
                    print(f"[host] {line}", flush=True)
            log.flush()

        replied = collections.deque()
        for line in sys.stdin:
            log.write(line)
            log.flush()
            if args.echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            if CRASHED.search(line):
                for verb in (["info"], ["shutdown", "--force"]):
                    status, output = ebbctl(verb)
                    note(f"domain crashed: ebbctl {' '.join(verb)} -> {status}")
                    if output:
                        note(output)
                continue
            m = REQUEST.search(line.rstrip("\r\n"))
            if not m:
                continue
            req_id, command = m[1], m[2]
            try:
                argv = shlex.split(command)
            except ValueError as e:
                note(f"request {req_id}: unparsable ({e})")
                argv = None
            status, output = ebbctl(argv) if argv else (2, "")
            note(f"request {req_id}: ebbctl {command} -> {status}")
            if output:
                note(output)
            # The output first: once the status is there, the guest reads both.
            ebbctl(["xenstore-write", f"data/ebb-host/{req_id}-output", output[:OUTPUT_MAX] or "-"])
            reply_status, reply = ebbctl(["xenstore-write", f"data/ebb-host/{req_id}", str(status)])
            if reply_status != 0:
                note(f"request {req_id}: could not reply through xenstore: {reply}")
            replied.append(req_id)
            if len(replied) > REPLIES_KEPT:
                old = replied.popleft()
                for node in (f"data/ebb-host/{old}", f"data/ebb-host/{old}-output"):
                    ebbctl(["xenstore-rm", node])
    return 0


if __name__ == "__main__":
    sys.exit(main())
