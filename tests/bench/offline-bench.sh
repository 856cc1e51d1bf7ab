#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Guest side of the page offline benchmark (scripts/bench-offline.sh; /init runs it
# with ebb.mode=bench ebb.bench=offline). memcheck holds checksummed pages (half of
# the free memory) while the host offlines guest frames from outside, straight over
# the control socket (no request passes through this guest), and stallmeter measures
# how long this guest stops running: first a baseline as long as ebb.bench_hold=
# seconds (20) with nothing happening, then the offline phase, which ends when the
# host writes data/ebb-bench-done. A loop reads xenstore every 2 s in both phases,
# so that its cost is in the baseline too. Console lines:
#   EBB-BENCH-OFFLINE-READY                     the host may start offlining
#   EBB-BENCH-STALL phase=baseline|offline ...  stallmeter's figures (microseconds)
#   memcheck: round 1: N of P pages mismatch    after the offline phase
set -uo pipefail

cd /kselftest/ebb
. ./lib.sh

HOLD_S=20
read -ra cmdline </proc/cmdline
for arg in "${cmdline[@]}"; do
    case $arg in
    ebb.bench_hold=*) HOLD_S=${arg#*=} ;;
    esac
done

cat >/tmp/offline-round.sh <<ROUND
poll() {
    until [ -n "\$(xenstore read \$1 2>/dev/null)" ]; do sleep 2; done
    touch /tmp/bench-stop
}
poll data/ebb-bench-never &
loop=\$!
echo "EBB-BENCH-STALL phase=baseline \$(stallmeter $HOLD_S /tmp/bench-never)"
kill \$loop
poll data/ebb-bench-done &
echo EBB-BENCH-OFFLINE-READY
echo "EBB-BENCH-STALL phase=offline \$(stallmeter 1800 /tmp/bench-stop)"
wait
ROUND

fill_mib=$(($(free_kb) / 2 / 1024))
echo "EBB-BENCH-INFO memcheck_mib=$fill_mib hold_s=$HOLD_S"
memcheck "$fill_mib" 1 "sh /tmp/offline-round.sh"
