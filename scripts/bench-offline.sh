#!/usr/bin/env bash
# Page offline benchmark (issue 15): the guest under ebbhv holds checksummed pages
# (memcheck) while the host takes EBB_BENCH_OFFLINE_FRAMES (1000) of its frames,
# spread over all its RAM, offline one request at a time; each moves its guest frame
# to a copy and ebbhv merges the 2 MiB leaf it split again. The guest measures how
# long it stops (tests/bench/offline-bench.sh, stallmeter); ebbhv times each pause
# with the TSC. Prints the figures and writes results/bench-offline.json; the
# console log stays in results/<time>-bench-offline/. Exits non-zero when a step
# fails or memcheck finds a page changed.
#
#   scripts/bench-offline.sh        (make bench runs it after bench-core.sh)
set -euo pipefail
EBB_LOG_TAG=bench-offline
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for f in "$EBB_BUILD/guest/initramfs.cpio.gz" "$EBB_BUILD/hv/ebbhv.elf" \
    "$EBB_ROOT/hypervisor/target/release/ebbctl"; do
    [ -e "$f" ] || die "missing $f (make initramfs hv ebbctl)"
done
run=$EBB_ROOT/results/$(date +%Y%m%d-%H%M%S)-bench-offline
mkdir -p "$run"
start=$SECONDS
log "guest under ebbhv: log $run/console.log"
EBB_BENCH=offline EBB_BENCH_HOLD_S=${EBB_BENCH_HOLD_S:-20} EBB_RESULTS=$run \
    "$EBB_ROOT/scripts/run-guest.sh" bench >"$run/run.log" 2>&1 &
pid=$!
status=0
python3 "$EBB_ROOT/scripts/bench-offline.py" --console "$run/console.log" \
    --socket "$run/ctl.sock" --frames "${EBB_BENCH_OFFLINE_FRAMES:-1000}" --pid "$pid" \
    --json "$EBB_ROOT/results/bench-offline.json" || status=$?
wait "$pid" || { [ "$status" != 0 ] || status=$?; }
[ "$status" = 0 ] || die "the offline benchmark failed (status $status; see $run/run.log and $run/console.log)"
log "results/bench-offline.json ($((SECONDS - start)) s)"
