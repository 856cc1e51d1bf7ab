#!/usr/bin/env bash
# Fuzzes ebbhv-core's hypercall dispatcher for a while: raw bytes become the caller's
# memory and a script of hypercalls, which must never panic, never be fatal and never
# break an invariant.
#
#   scripts/fuzz-core.sh [seconds] [target]    (default 30 s, target dispatch)
#
# Targets: dispatch (the hypercall dispatcher), xenstore (the xenstore ring
# handler fed a hostile guest's ring page and control-plane writes), walk (the
# guest page-table walker against hostile tables), control (the control
# protocol's parser and token codec), platform (the Xen platform hypercalls
# ebbhv serves itself, core::platform::xen, with bounded memory after each call)
# and npt (the real nested page tables, fed the p2m's change log through the
# image's mirror adapter after each guest or control-plane change, must equal the
# p2m and hold no table page its leaves do not need). A target's dictionary, if any, is
# hypervisor/fuzz/dicts/<target>.dict.
#
# Installs cargo-fuzz into the project's tools directory if it is missing. cargo-fuzz
# needs nightly flags (sanitizers); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept
# them. Crashes are kept under hypervisor/fuzz/artifacts/<target>/.
#
# The corpus lives in the cache, $EBB_CACHE/fuzz-corpus/<target> (like the kernel
# build), so that each run starts from what the runs before it found. The last line
# says how many inputs this run executed and how the corpus grew:
#   [fuzz-core] fuzz <target>: N executions in S s, corpus M inputs (K from earlier runs)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
EBB_LOG_TAG=fuzz-core

seconds=${1:-30}
target=${2:-dispatch}
export PATH="$EBB_TOOLS/bin:$PATH"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    log "installing cargo-fuzz into $EBB_TOOLS"
    cargo install --locked --root "$EBB_TOOLS" cargo-fuzz
fi

cd "$EBB_ROOT/hypervisor/fuzz"
corpus=$EBB_CACHE/fuzz-corpus/$target
mkdir -p "$corpus"
# New inputs go to the first directory; a corpus left in the tree by older versions
# of this script is read as seeds.
seeds=()
[ -d "corpus/$target" ] && seeds=("corpus/$target")
# Words a target's input language has that random mutation rarely spells.
dict=()
[ -f "dicts/$target.dict" ] && dict=("-dict=dicts/$target.dict")
before=$(find "$corpus" -type f | wc -l)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
log "fuzzing $target for $seconds s, from $before inputs in $corpus"
set +e
RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 "${dict[@]}" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -n 1)
log "fuzz $target: ${execs:-unknown number of} executions in $seconds s, corpus $(find "$corpus" -type f | wc -l) inputs ($before from earlier runs)"
[ "$status" = 0 ] || die "cargo fuzz run $target failed (status $status)"
[ -n "$execs" ] || die "libFuzzer printed no final stats (stat::number_of_executed_units)"
log "no crash in $seconds s"
